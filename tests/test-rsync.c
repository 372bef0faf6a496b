/* test-rsync.c: ExecnetRSync against real popen gateways
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <gio/gunixsocketaddress.h>

#include <execnet/execnet.h>

#include "test-helpers.h"

typedef struct {
  ExecnetGroup *group;     /* (owned) */
  ExecnetGateway *gw[2];   /* (unowned) */
  char *base;              /* (owned) a scratch directory */
  char *src;               /* (owned) base/src */
  GHashTable *sent;        /* (owned) "gateway-id:path" → count of completed files */
  guint progress;          /* emissions seen */
} Fixture;

static void
write_file (const char *dir,
            const char *path,
            const char *content,
            mode_t      mode,
            gint64      mtime_sec)
{
  g_autofree char *full = g_build_filename (dir, path, NULL);
  g_autofree char *parent = g_path_get_dirname (full);
  struct timespec times[2] = { { mtime_sec, 123456789 }, { mtime_sec, 123456789 } };
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_file_set_contents (full, content, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (chmod (full, mode), ==, 0);
  g_assert_cmpint (utimensat (AT_FDCWD, full, times, 0), ==, 0);
}

static void
on_progress (ExecnetRSync   *rsync,
             ExecnetGateway *gateway,
             const char     *path,
             guint64         done,
             guint64         total,
             Fixture        *fixture)
{
  g_assert_true (EXECNET_IS_GATEWAY (gateway));
  g_assert_cmpuint (done, <=, total);
  fixture->progress++;
  if (done == total)
    {
      char *key = g_strdup_printf ("%s:%s", execnet_gateway_get_id (gateway), path);
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (fixture->sent, key));

      g_hash_table_replace (fixture->sent, key, GUINT_TO_POINTER (count + 1));
    }
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->group = execnet_group_new ();
  fixture->gw[0] = test_make_gateway (fixture->group, NULL);
  fixture->gw[1] = test_make_gateway (fixture->group, NULL);
  fixture->base = g_dir_make_tmp ("execnet-rsync-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->src = g_build_filename (fixture->base, "src", NULL);
  fixture->sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  write_file (fixture->src, "a.txt", "alpha\n", 0640, 1000000000);
  write_file (fixture->src, "sub/b.sh", "#!/bin/sh\necho b\n", 0755, 1100000000);
  write_file (fixture->src, "sub/deeper/empty", "", 0600, 1200000000);
  g_autofree char *link = g_build_filename (fixture->src, "sub", "to-a", NULL);
  g_assert_cmpint (symlink ("../a.txt", link), ==, 0);
  g_autofree char *dangling = g_build_filename (fixture->src, "dangling", NULL);
  g_assert_cmpint (symlink ("nowhere/at/all", dangling), ==, 0);
  g_autofree char *emptydir = g_build_filename (fixture->src, "emptydir", NULL);
  g_assert_cmpint (g_mkdir (emptydir, 0700), ==, 0);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (execnet_group_terminate (fixture->group, TEST_TIMEOUT, &error));
  g_assert_no_error (error);
  g_object_unref (fixture->group);
  test_remove_tree (fixture->base);
  g_free (fixture->base);
  g_free (fixture->src);
  g_hash_table_unref (fixture->sent);
}

static char *
dest_path (Fixture    *fixture,
           const char *name)
{
  return g_build_filename (fixture->base, name, NULL);
}

/* Asserts that @dst holds what @src holds: types, contents, modes, link
 * texts and modification times, and no temporary files. */
static void
assert_same_tree (const char *src,
                  const char *dst)
{
  g_autoptr(GDir) dir = g_dir_open (src, 0, NULL);
  g_autoptr(GDir) other = g_dir_open (dst, 0, NULL);
  const char *name;
  guint count = 0, other_count = 0;

  g_assert_nonnull (dir);
  g_assert_nonnull (other);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *a = g_build_filename (src, name, NULL);
      g_autofree char *b = g_build_filename (dst, name, NULL);
      struct stat sa, sb;

      count++;
      g_assert_cmpint (lstat (a, &sa), ==, 0);
      if (lstat (b, &sb) < 0)
        g_error ("%s is missing", b);
      g_assert_cmpuint (sa.st_mode, ==, sb.st_mode);
      if (S_ISDIR (sa.st_mode))
        assert_same_tree (a, b);
      else if (S_ISLNK (sa.st_mode))
        {
          g_autofree char *la = g_file_read_link (a, NULL);
          g_autofree char *lb = g_file_read_link (b, NULL);

          g_assert_cmpstr (la, ==, lb);
        }
      else
        {
          g_autofree char *ca = NULL, *cb = NULL;
          gsize na, nb;

          g_assert_true (g_file_get_contents (a, &ca, &na, NULL));
          g_assert_true (g_file_get_contents (b, &cb, &nb, NULL));
          g_assert_cmpmem (ca, na, cb, nb);
        }
      if (!S_ISDIR (sa.st_mode))
        {
          g_assert_cmpint (sa.st_mtim.tv_sec, ==, sb.st_mtim.tv_sec);
          g_assert_cmpint (sa.st_mtim.tv_nsec, ==, sb.st_mtim.tv_nsec);
        }
    }
  while ((name = g_dir_read_name (other)) != NULL)
    other_count++;
  g_assert_cmpuint (count, ==, other_count);
}

static ExecnetRSync *
make_rsync (Fixture           *fixture,
            const char        *dest0,
            const char        *dest1,
            ExecnetRSyncFlags  flags)
{
  g_autoptr(GError) error = NULL;
  ExecnetRSync *rsync = execnet_rsync_new (fixture->src);

  g_assert_cmpstr (execnet_rsync_get_source_dir (rsync), ==, fixture->src);
  g_signal_connect (rsync, "progress", G_CALLBACK (on_progress), fixture);
  g_assert_true (execnet_rsync_add_target (rsync, fixture->gw[0], dest0, flags, &error));
  g_assert_no_error (error);
  if (dest1 != NULL)
    {
      g_assert_true (execnet_rsync_add_target (rsync, fixture->gw[1], dest1, flags, &error));
      g_assert_no_error (error);
    }
  return rsync;
}

static void
send_ok (ExecnetRSync *rsync)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (execnet_rsync_send (rsync, NULL, &error));
  g_assert_no_error (error);
}

static guint
sent_count (Fixture        *fixture,
            ExecnetGateway *gateway,
            const char     *path)
{
  g_autofree char *key = g_strdup_printf ("%s:%s", execnet_gateway_get_id (gateway), path);

  return GPOINTER_TO_UINT (g_hash_table_lookup (fixture->sent, key));
}

/* Two targets at once; modes, links and times kept; a destination that
 * does not exist yet is made. */
static void
test_two_targets (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *d1 = dest_path (fixture, "nested/d1");
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, d1, EXECNET_RSYNC_NONE);

  send_ok (rsync);
  assert_same_tree (fixture->src, d0);
  assert_same_tree (fixture->src, d1);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpuint (sent_count (fixture, fixture->gw[i], "a.txt"), ==, 1);
      g_assert_cmpuint (sent_count (fixture, fixture->gw[i], "sub/b.sh"), ==, 1);
      g_assert_cmpuint (sent_count (fixture, fixture->gw[i], "sub/deeper/empty"), ==, 1);
    }
  g_assert_cmpuint (g_hash_table_size (fixture->sent), ==, 6);
}

/* A second send transfers nothing; a changed file is sent alone; a file
 * whose time changed but whose content did not only gets its time. */
static void
test_changed_only (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_NONE);

  send_ok (rsync);
  g_assert_cmpuint (g_hash_table_size (fixture->sent), ==, 3);
  g_hash_table_remove_all (fixture->sent);
  fixture->progress = 0;

  send_ok (rsync);
  g_assert_cmpuint (fixture->progress, ==, 0);

  /* Same size, new content, new time. */
  write_file (fixture->src, "a.txt", "ALPHA\n", 0640, 1300000000);
  /* Same content, new time and mode. */
  write_file (fixture->src, "sub/b.sh", "#!/bin/sh\necho b\n", 0700, 1400000000);
  send_ok (rsync);
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "a.txt"), ==, 1);
  g_assert_cmpuint (g_hash_table_size (fixture->sent), ==, 1);
  assert_same_tree (fixture->src, d0);
}

/* Without DELETE extra files stay; with it they go, directories too. */
static void
test_delete (Fixture       *fixture,
             gconstpointer  data)
{
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *extra = g_build_filename (d0, "extra.txt", NULL);
  g_autofree char *extra_dir = g_build_filename (d0, "old", "x", NULL);
  g_autoptr(ExecnetRSync) keep = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_NONE);
  g_autoptr(ExecnetRSync) prune = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_DELETE);

  write_file (d0, "extra.txt", "x", 0644, 1000000000);
  write_file (d0, "old/x", "x", 0644, 1000000000);
  send_ok (keep);
  g_assert_true (g_file_test (extra, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (extra_dir, G_FILE_TEST_EXISTS));

  send_ok (prune);
  g_assert_false (g_file_test (extra, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (extra_dir, G_FILE_TEST_EXISTS));
  assert_same_tree (fixture->src, d0);
}

static void
write_big (const char *path,
           gsize       size)
{
  g_autofree guchar *data = g_malloc (size);
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < size; i += 4)
    *(guint32 *) (data + i) = g_rand_int (rand);
  g_file_set_contents (path, (char *) data, size, &error);
  g_assert_no_error (error);
}

/* A file of several MiB to two targets, reported chunk by chunk. */
static void
test_big_file (Fixture       *fixture,
               gconstpointer  data)
{
  g_autofree char *big = g_build_filename (fixture->src, "big.bin", NULL);
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *d1 = dest_path (fixture, "d1");
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, d1, EXECNET_RSYNC_NONE);

  write_big (big, 6 * 1024 * 1024);
  send_ok (rsync);
  assert_same_tree (fixture->src, d0);
  assert_same_tree (fixture->src, d1);
  /* 24 chunks per target at least, plus the small files. */
  g_assert_cmpuint (fixture->progress, >=, 2 * 24);
}

static void
on_send_done (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

/* The async form reports progress while it runs; a cancellation seen in
 * the middle of a file leaves no part of it behind. */
static void
test_async_cancel (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *big = g_build_filename (fixture->src, "big.bin", NULL);
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *remote_big = g_build_filename (d0, "big.bin", NULL);
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_NONE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  write_big (big, 48 * 1024 * 1024);
  execnet_rsync_send_async (rsync, cancellable, on_send_done, &result);
  while (fixture->progress == 0 && result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_cancellable_cancel (cancellable);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (execnet_rsync_send_finish (rsync, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (g_file_test (remote_big, G_FILE_TEST_EXISTS));

  /* A cancelled send cannot start at all; then a full one completes. */
  g_clear_error (&error);
  g_assert_false (execnet_rsync_send (rsync, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_object (&result);
  execnet_rsync_send_async (rsync, NULL, on_send_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_clear_error (&error);
  g_assert_true (execnet_rsync_send_finish (rsync, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "big.bin"), ==, 1);
}

static void
test_missing_source (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree char *missing = g_build_filename (fixture->base, "no-such-dir", NULL);
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autoptr(ExecnetRSync) rsync = execnet_rsync_new (missing);
  g_autoptr(GError) error = NULL;

  g_assert_true (execnet_rsync_add_target (rsync, fixture->gw[0], d0, 0, &error));
  g_assert_false (execnet_rsync_send (rsync, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "give an existing local directory"));
  g_assert_false (g_file_test (d0, G_FILE_TEST_EXISTS));

  g_clear_error (&error);
  g_assert_false (execnet_rsync_add_target (rsync, fixture->gw[0], "", 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* A destination below a regular file cannot be made. */
static void
test_unwritable_target (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autofree char *blocker = dest_path (fixture, "blocker");
  g_autofree char *d0 = g_build_filename (blocker, "d0", NULL);
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_NONE);
  g_autoptr(GError) error = NULL;

  write_file (fixture->base, "blocker", "file", 0644, 1000000000);
  g_assert_false (execnet_rsync_send (rsync, NULL, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
  g_assert_nonnull (strstr (error->message, "cannot create the destination directory"));
  g_assert_nonnull (strstr (error->message, execnet_gateway_get_id (fixture->gw[0])));
  g_assert_cmpuint (fixture->progress, ==, 0);

  /* The gateway is still usable. */
  g_autofree char *d1 = dest_path (fixture, "d1");
  g_autoptr(ExecnetRSync) good = make_rsync (fixture, d1, NULL, EXECNET_RSYNC_NONE);

  send_ok (good);
  assert_same_tree (fixture->src, d1);
}

/* A directory of the destination that is a link leading outside: the
 * receiver refuses before it changes anything. */
static void
test_symlink_escape (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *outside = dest_path (fixture, "outside");
  g_autofree char *sub = g_build_filename (d0, "sub", NULL);
  g_autofree char *a = g_build_filename (d0, "a.txt", NULL);
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_DELETE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;

  g_assert_cmpint (g_mkdir_with_parents (outside, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (d0, 0755), ==, 0);
  g_assert_cmpint (symlink (outside, sub), ==, 0);
  write_file (d0, "keep.txt", "keep", 0644, 1000000000);

  g_assert_false (execnet_rsync_send (rsync, NULL, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
  g_assert_nonnull (strstr (error->message, "symbolic link leading outside the destination"));
  g_assert_nonnull (strstr (error->message, "remove that link"));
  dir = g_dir_open (outside, 0, NULL);
  g_assert_null (g_dir_read_name (dir));
  g_assert_false (g_file_test (a, G_FILE_TEST_EXISTS));
  g_autofree char *keep = g_build_filename (d0, "keep.txt", NULL);
  g_assert_true (g_file_test (keep, G_FILE_TEST_EXISTS));
}

/* Paths with ".." or absolute ones, which no scan makes, fed to the
 * receiver directly: refused, nothing written. */
static void
test_dotdot_refused (Fixture       *fixture,
                     gconstpointer  data)
{
  const char *bad[] = { "../escape", "/abs", "a/../../escape", NULL };
  g_autofree char *script_path = g_test_build_filename (G_TEST_DIST, "..", "core", "remote",
                                                         "rsync.py", NULL);
  g_autofree char *script = NULL;
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autofree char *escape = dest_path (fixture, "escape");

  g_assert_true (g_file_get_contents (script_path, &script, NULL, NULL));
  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(ExecnetChannel) channel = test_remote_exec (fixture->gw[0], script);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) item = NULL;

      test_send (channel, g_variant_new ("(sb)", d0, FALSE));
      test_send (channel, g_variant_new_parsed ("[(%s, 'f', int64 1, int64 0, uint32 420, '')]",
                                                bad[i]));
      item = execnet_channel_receive (channel, TEST_TIMEOUT, &error);
      g_assert_null (item);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
      g_assert_nonnull (strstr (error->message, "leaves the destination"));
    }
  g_assert_false (g_file_test (escape, G_FILE_TEST_EXISTS));
}

static void
assert_same_file (const char *a,
                  const char *b)
{
  struct stat sa, sb;

  g_assert_cmpint (lstat (a, &sa), ==, 0);
  g_assert_cmpint (lstat (b, &sb), ==, 0);
  g_assert_cmpuint (sa.st_dev, ==, sb.st_dev);
  g_assert_cmpuint (sa.st_ino, ==, sb.st_ino);
}

/* Special files in the source: the names of one file stay hard links to
 * each other (the content is sent once), a FIFO is made again with its
 * mode and time, a socket is skipped (devices too). A second send changes
 * nothing; a name that stops being a link in the source stops being one
 * in the destination. */
static void
test_special_files (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *d0 = dest_path (fixture, "d0");
  g_autoptr(ExecnetRSync) rsync = make_rsync (fixture, d0, NULL, EXECNET_RSYNC_NONE);
  g_autofree char *a = g_build_filename (fixture->src, "a.txt", NULL);
  g_autofree char *again = g_build_filename (fixture->src, "b-again", NULL);
  g_autofree char *hard = g_build_filename (fixture->src, "sub", "hard", NULL);
  g_autofree char *fifo = g_build_filename (fixture->src, "pipe", NULL);
  g_autofree char *sock_path = g_build_filename (fixture->src, "sock", NULL);
  g_autofree char *d_a = g_build_filename (d0, "a.txt", NULL);
  g_autofree char *d_again = g_build_filename (d0, "b-again", NULL);
  g_autofree char *d_hard = g_build_filename (d0, "sub", "hard", NULL);
  g_autofree char *d_fifo = g_build_filename (d0, "pipe", NULL);
  g_autofree char *d_sock = g_build_filename (d0, "sock", NULL);
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;
  struct timespec times[2] = { { 1500000000, 5 }, { 1500000000, 5 } };
  struct stat st;

  g_assert_no_errno (link (a, again));
  g_assert_no_errno (link (a, hard));
  g_assert_no_errno (mkfifo (fifo, 0640));
  g_assert_no_errno (chmod (fifo, 0640));
  g_assert_no_errno (utimensat (AT_FDCWD, fifo, times, AT_SYMLINK_NOFOLLOW));
  sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (sock_path);
  g_assert_true (g_socket_bind (sock, address, FALSE, &error));
  g_assert_no_error (error);

  send_ok (rsync);
  /* Content once, however many names. */
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "a.txt"), ==, 1);
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "b-again"), ==, 0);
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "sub/hard"), ==, 0);
  assert_same_file (d_a, d_again);
  assert_same_file (d_a, d_hard);
  g_assert_cmpint (lstat (d_a, &st), ==, 0);
  g_assert_cmpuint (st.st_nlink, ==, 3);
  g_assert_cmpint (lstat (d_fifo, &st), ==, 0);
  g_assert_true (S_ISFIFO (st.st_mode));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpint (st.st_mtim.tv_sec, ==, 1500000000);
  g_assert_cmpint (st.st_mtim.tv_nsec, ==, 5);
  g_assert_false (g_file_test (d_sock, G_FILE_TEST_EXISTS));
  g_assert_cmpint (lstat (d_sock, &st), <, 0);

  g_hash_table_remove_all (fixture->sent);
  fixture->progress = 0;
  send_ok (rsync);
  g_assert_cmpuint (fixture->progress, ==, 0);
  assert_same_file (d_a, d_again);
  assert_same_file (d_a, d_hard);

  /* b-again becomes a file of its own. */
  g_assert_no_errno (g_unlink (again));
  write_file (fixture->src, "b-again", "another text\n", 0600, 1600000000);
  send_ok (rsync);
  g_assert_cmpuint (sent_count (fixture, fixture->gw[0], "b-again"), ==, 1);
  assert_same_file (d_a, d_hard);
  g_assert_cmpint (lstat (d_again, &st), ==, 0);
  g_assert_cmpuint (st.st_nlink, ==, 1);
  g_assert_cmpint (lstat (d_a, &st), ==, 0);
  g_assert_cmpuint (st.st_nlink, ==, 2);
  {
    g_autofree char *text = NULL;

    g_assert_true (g_file_get_contents (d_again, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, "another text\n");
    g_clear_pointer (&text, g_free);
    g_assert_true (g_file_get_contents (d_a, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, "alpha\n");
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/rsync/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("two-targets", test_two_targets);
  ADD ("changed-only", test_changed_only);
  ADD ("delete", test_delete);
  ADD ("big-file", test_big_file);
  ADD ("special-files", test_special_files);
  ADD ("async-cancel", test_async_cancel);
  ADD ("bad/missing-source", test_missing_source);
  ADD ("bad/unwritable-target", test_unwritable_target);
  ADD ("bad/symlink-escape", test_symlink_escape);
  ADD ("bad/dotdot", test_dotdot_refused);
#undef ADD

  return g_test_run ();
}
