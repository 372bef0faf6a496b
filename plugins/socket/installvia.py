# Runs in the "via" gateway for a spec with installvia=ID: serves exactly
# one connection on a loopback port, authenticated with the token the master
# sends over this (already trusted) channel, and hands the connection to a
# fresh interpreter, which reads one bootstrap line and runs it with the
# socket bound to clientsock, as socket servers do. The handshake is the
# socket server's (doc/protocol.md, "Socket server authentication").
import hashlib
import hmac
import os
import socket
import subprocess
import sys

SERVE_ONE = r"""
import socket, sys
clientsock = socket.socket(fileno=int(sys.argv[1]))
line = b''
while True:
    chunk = clientsock.recv(65536, socket.MSG_PEEK)
    if not chunk:
        sys.exit(1)
    end = chunk.find(b'\n')
    if end >= 0:
        line += clientsock.recv(end + 1)
        break
    line += clientsock.recv(len(chunk))
exec(compile(eval(line), '<installvia>', 'exec'),
     {'clientsock': clientsock, '__name__': '__channelexec__'})
"""

token = channel.receive().encode()
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(('127.0.0.1', 0))
listener.listen(1)
listener.settimeout(60)
channel.send(listener.getsockname()[1])
conn, peer = listener.accept()
listener.close()
conn.settimeout(30)


def read_line():
    data = b''
    while not data.endswith(b'\n'):
        byte = conn.recv(1)
        if not byte or len(data) > 256:
            raise ConnectionError('installvia: the handshake was cut short')
        data += byte
    return data[:-1].decode('ascii', 'replace')


def mac(role, server_nonce, client_nonce):
    message = 'execnet-auth-1 %s %s %s' % (role, server_nonce, client_nonce)
    return hmac.new(token, message.encode(), hashlib.sha256).hexdigest()


server_nonce = os.urandom(32).hex()
conn.sendall(('execnet-auth-1 %s\n' % server_nonce).encode())
answer = read_line().split(' ')
if len(answer) != 2 or not hmac.compare_digest(answer[1], mac('client', server_nonce, answer[0])):
    conn.sendall(b'NO\n')
    conn.close()
    raise PermissionError('installvia: refused a connection from %s:%s without the token' % peer)
conn.sendall(('OK %s\n' % mac('server', server_nonce, answer[0])).encode())
conn.settimeout(None)

subprocess.Popen([sys.executable, '-c', SERVE_ONE, str(conn.fileno())],
                 pass_fds=(conn.fileno(),), stdin=subprocess.DEVNULL)
conn.close()
