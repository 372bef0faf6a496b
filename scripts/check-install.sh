#!/bin/sh
# Installs execnet-glib into a scratch prefix and checks it as a user would:
# a program built with pkg-config alone runs a popen gateway, finding the
# installed plugin without EXECNET_TRANSPORT_PATH.
set -eu
cd "$(dirname "$0")/.."

prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT

meson setup build-install --prefix="$prefix" -Dtests=false -Dbench=false >/dev/null
meson install -C build-install >/dev/null

export PKG_CONFIG_PATH="$prefix/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo)/pkgconfig:$prefix/lib/pkgconfig"
unset EXECNET_TRANSPORT_PATH

cc -o "$prefix/groups" doc/examples/groups.c $(pkg-config --cflags --libs execnet-1) \
   -Wl,-rpath,"$(pkg-config --variable=libdir execnet-1)"
"$prefix/groups" "popen//python=/usr/bin/python3"

test -x "$(pkg-config --variable=transportdir execnet-1)/libexecnet-popen.so"

# The worked example of doc/transports.md, built out of tree as a plugin
# author would, then used through a gateway.
cc -shared -fPIC -o "$prefix/libexecnet-wrap.so" doc/examples/transport-wrap.c \
   $(pkg-config --cflags --libs execnet-1)
cat > "$prefix/wrap-check.c" <<'EOF'
#include <execnet/execnet.h>

int
main (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;

  if (execnet_group_make_gateway (group, "wrap=env WRAPPED=yes//python=/usr/bin/python3", &error) == NULL)
    g_error ("wrap: %s", error->message);
  if (execnet_group_make_gateway (group, "wrap=env//chdri=x", &error) != NULL ||
      strstr (error->message, "did you mean chdir?") == NULL)
    g_error ("wrap: the misspelt key was not refused");
  return execnet_group_terminate (group, 10.0, NULL) ? 0 : 1;
}
EOF
cc -o "$prefix/wrap-check" "$prefix/wrap-check.c" $(pkg-config --cflags --libs execnet-1) \
   -Wl,-rpath,"$(pkg-config --variable=libdir execnet-1)"
EXECNET_TRANSPORT_PATH="$prefix" "$prefix/wrap-check"
test -f "$prefix/share/man/man1/execnet-tool.1"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir execnet-1)" "$prefix/bin/execnet-tool" transports
echo "install check: OK"
