/* execnet-rsync.c: one local directory copied to many gateways
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-channel.h>
#include <execnet/execnet-rsync.h>

#include "execnet-emitter-private.h"
#include "execnet-util-private.h"

/**
 * ExecnetRSync:
 *
 * Copies one local directory to directories on many gateways at once, as
 * execnet's `RSync`: only files whose size or modification time differ are
 * considered, and of those whose size is equal only the ones whose SHA-256
 * differs are sent. Modes, symbolic links and modification times are kept;
 * each file is written to a temporary file beside it and renamed over the
 * old one, so a reader on the remote sees the old or the new content, never
 * a part. With %EXECNET_RSYNC_DELETE what the source no longer has is
 * removed.
 *
 * ```c
 * g_autoptr(ExecnetRSync) rsync = execnet_rsync_new ("site");
 *
 * if (!execnet_rsync_add_target (rsync, gw1, "/srv/site", EXECNET_RSYNC_DELETE, &error) ||
 *     !execnet_rsync_add_target (rsync, gw2, "/srv/site", EXECNET_RSYNC_DELETE, &error) ||
 *     !execnet_rsync_send (rsync, NULL, &error))
 *   g_printerr ("%s\n", error->message);
 * ```
 *
 * Files are read and sent in chunks of 256 KiB, so a file of any size
 * never sits in memory whole; the channel's flow control keeps a slow
 * gateway from queueing more. Each target runs in a thread of its own.
 * The receiving side is Python code started with
 * [method@Execnet.Gateway.remote_exec], so it works with any agent,
 * execnet's own included. The receiver refuses any path that would leave
 * the destination, by `..` or through a symbolic link it finds there, and
 * it checks every path before it changes anything.
 *
 * The object is made and used in one thread; [signal@Execnet.RSync::progress]
 * is emitted in the thread-default main context of the thread that made it.
 *
 * Since: 1.0
 */

#define CHUNK_SIZE (256 * 1024)
/* Receives wait this long at a time, so a cancellation is seen. */
#define POLL_SECONDS 0.25
/* What the receiver's own refusals start with (core/remote/rsync.py). */
#define RECEIVER_MARK "rsync receiver: "

typedef struct {
  ExecnetGateway    *gateway;   /* (owned) */
  char              *dest_dir;  /* (owned) */
  ExecnetRSyncFlags  flags;
} Target;

typedef struct {
  char    *path;       /* (owned) relative, '/'-separated */
  char     type;       /* 'd', 'f', 'l', 'p' (FIFO) or 'h' (hard link) */
  guint64  size;
  gint64   mtime_ns;
  guint32  mode;
  char    *link;       /* (owned) the link's text; for 'h', the path of the
                        * earlier entry of the same file; "" for others */
} Entry;

struct _ExecnetRSync
{
  GObject         parent_instance;

  /* No lock: source_dir and emitter are written once at construction;
   * targets is changed by add_target only, which must not run while a
   * send does (its documentation says so), and a send's job threads only
   * read it, each its own Target. */
  char           *source_dir;  /* (owned) */
  GPtrArray      *targets;     /* (owned) (element-type Target) */
  ExecnetEmitter *emitter;     /* (owned) signals in the making context */
};

G_DEFINE_FINAL_TYPE (ExecnetRSync, execnet_rsync, G_TYPE_OBJECT)

enum {
  SIGNAL_PROGRESS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
target_free (gpointer data)
{
  Target *target = data;

  g_object_unref (target->gateway);
  g_free (target->dest_dir);
  g_free (target);
}

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_free (entry->path);
  g_free (entry->link);
  g_free (entry);
}

static void
execnet_rsync_finalize (GObject *object)
{
  ExecnetRSync *self = EXECNET_RSYNC (object);

  g_free (self->source_dir);
  g_ptr_array_unref (self->targets);
  _execnet_emitter_free (self->emitter);

  G_OBJECT_CLASS (execnet_rsync_parent_class)->finalize (object);
}

static void
execnet_rsync_class_init (ExecnetRSyncClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = execnet_rsync_finalize;

  /**
   * ExecnetRSync::progress:
   * @self: the #ExecnetRSync
   * @gateway: the gateway the file goes to
   * @path: the file's path relative to the source directory
   * @bytes_done: bytes of the file sent so far
   * @bytes_total: the file's size
   *
   * Emitted for each file sent, after each chunk; the last emission of a
   * file has @bytes_done equal to @bytes_total. Files that are already
   * current are not reported. Emitted in the thread-default main context
   * of the thread that made the object: while a synchronous
   * [method@Execnet.RSync.send] runs in that thread, the emissions wait
   * until it returns.
   *
   * Since: 1.0
   */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                  EXECNET_TYPE_GATEWAY, G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_UINT64);
}

static void
execnet_rsync_init (ExecnetRSync *self)
{
  self->targets = g_ptr_array_new_with_free_func (target_free);
  self->emitter = _execnet_emitter_new ();
}

/**
 * execnet_rsync_new:
 * @source_dir: (type filename): the local directory to copy
 *
 * Makes an RSync of @source_dir. The directory is read when
 * [method@Execnet.RSync.send] runs, not now.
 *
 * Returns: (transfer full): a new #ExecnetRSync
 *
 * Since: 1.0
 */
ExecnetRSync *
execnet_rsync_new (const char *source_dir)
{
  ExecnetRSync *self;

  g_return_val_if_fail (source_dir != NULL, NULL);

  self = g_object_new (EXECNET_TYPE_RSYNC, NULL);
  self->source_dir = g_strdup (source_dir);
  return self;
}

/**
 * execnet_rsync_get_source_dir:
 * @self: an #ExecnetRSync
 *
 * Returns: (type filename): the directory given to [ctor@Execnet.RSync.new]
 *
 * Since: 1.0
 */
const char *
execnet_rsync_get_source_dir (ExecnetRSync *self)
{
  g_return_val_if_fail (EXECNET_IS_RSYNC (self), NULL);

  return self->source_dir;
}

/**
 * execnet_rsync_add_target:
 * @self: an #ExecnetRSync
 * @gateway: the gateway to copy to
 * @dest_dir: (type filename): the directory on @gateway's host; made if
 *   missing, relative paths start at the remote's working directory
 * @flags: how to treat the destination
 * @error: return location for a #GError
 *
 * Adds a destination for the next [method@Execnet.RSync.send]. Add
 * targets before sending, not while a send runs.
 *
 * Returns: %TRUE, or %FALSE with @error set when @dest_dir is empty
 *
 * Since: 1.0
 */
gboolean
execnet_rsync_add_target (ExecnetRSync       *self,
                          ExecnetGateway     *gateway,
                          const char         *dest_dir,
                          ExecnetRSyncFlags   flags,
                          GError            **error)
{
  Target *target;

  g_return_val_if_fail (EXECNET_IS_RSYNC (self), FALSE);
  g_return_val_if_fail (EXECNET_IS_GATEWAY (gateway), FALSE);
  g_return_val_if_fail (dest_dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (*dest_dir == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "rsync to gateway %s: the destination directory is empty; "
                   "give a directory, \".\" for the remote's working directory",
                   execnet_gateway_get_id (gateway));
      return FALSE;
    }

  target = g_new0 (Target, 1);
  target->gateway = g_object_ref (gateway);
  target->dest_dir = g_strdup (dest_dir);
  target->flags = flags;
  g_ptr_array_add (self->targets, target);
  return TRUE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* Appends the entries under @dir (relative path @prefix, "" at the top),
 * parents before children; symbolic links are not followed. @inodes maps
 * "dev:ino" of each regular file with several links to its first path: a
 * later path of the same file becomes a hard link to it. Sockets and
 * devices are skipped. */
static gboolean
scan_dir (const char  *dir,
          const char  *prefix,
          GPtrArray   *entries,
          GHashTable  *inodes,
          GError     **error)
{
  g_autoptr(GDir) handle = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  handle = g_dir_open (dir, 0, error);
  if (handle == NULL)
    {
      g_prefix_error (error, "rsync: cannot read the source: ");
      return FALSE;
    }
  while ((name = g_dir_read_name (handle)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *child = g_ptr_array_index (names, i);
      g_autofree char *full = g_build_filename (dir, child, NULL);
      g_autofree char *rel = *prefix ? g_strconcat (prefix, "/", child, NULL) : g_strdup (child);
      struct stat st;
      Entry *entry;

      if (lstat (full, &st) < 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "rsync: cannot read the source file %s: %s", full,
                       g_strerror (saved_errno));
          return FALSE;
        }
      if (!S_ISDIR (st.st_mode) && !S_ISREG (st.st_mode) && !S_ISLNK (st.st_mode) &&
          !S_ISFIFO (st.st_mode))
        continue;  /* sockets and devices are not copied */

      entry = g_new0 (Entry, 1);
      entry->path = g_strdup (rel);
      entry->size = S_ISREG (st.st_mode) ? (guint64) st.st_size : 0;
      entry->mtime_ns = (gint64) st.st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + st.st_mtim.tv_nsec;
      entry->mode = st.st_mode & 07777;
      entry->link = g_strdup ("");
      g_ptr_array_add (entries, entry);

      if (S_ISLNK (st.st_mode))
        {
          entry->type = 'l';
          g_free (entry->link);
          entry->link = g_file_read_link (full, error);
          if (entry->link == NULL)
            return FALSE;
        }
      else if (S_ISREG (st.st_mode) && st.st_nlink > 1)
        {
          g_autofree char *key = g_strdup_printf ("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                                                  (guint64) st.st_dev, (guint64) st.st_ino);
          const char *first = g_hash_table_lookup (inodes, key);

          if (first != NULL)
            {
              entry->type = 'h';
              entry->size = 0;
              g_free (entry->link);
              entry->link = g_strdup (first);
            }
          else
            {
              entry->type = 'f';
              g_hash_table_insert (inodes, g_steal_pointer (&key), g_strdup (rel));
            }
        }
      else if (S_ISREG (st.st_mode))
        entry->type = 'f';
      else if (S_ISFIFO (st.st_mode))
        entry->type = 'p';
      else
        {
          entry->type = 'd';
          if (!scan_dir (full, rel, entries, inodes, error))
            return FALSE;
        }
    }
  return TRUE;
}

static GPtrArray *
scan_source (const char  *source_dir,
             GError     **error)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func (entry_free);
  g_autoptr(GHashTable) inodes = NULL;

  if (!g_file_test (source_dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "rsync: the source %s is not a directory or does not exist; "
                   "give an existing local directory", source_dir);
      return NULL;
    }
  inodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!scan_dir (source_dir, "", entries, inodes, error))
    return NULL;
  return g_steal_pointer (&entries);
}

typedef struct {
  ExecnetGateway *gateway;  /* (owned) */
  char           *path;     /* (owned) */
  guint64         done;
  guint64         total;
} Progress;

static void
progress_free (gpointer data)
{
  Progress *progress = data;

  g_object_unref (progress->gateway);
  g_free (progress->path);
  g_free (progress);
}

static void
emit_progress (GObject  *object,
               gpointer  data)
{
  Progress *progress = data;

  g_signal_emit (object, signals[SIGNAL_PROGRESS], 0, progress->gateway,
                 progress->path, progress->done, progress->total);
}

/* Any thread. */
static void
queue_progress (ExecnetRSync   *self,
                ExecnetGateway *gateway,
                const char     *path,
                guint64         done,
                guint64         total)
{
  Progress *progress = g_new0 (Progress, 1);

  progress->gateway = g_object_ref (gateway);
  progress->path = g_strdup (path);
  progress->done = done;
  progress->total = total;
  _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_progress, progress, progress_free);
}

/* One target's whole exchange, in a thread of its own. */
typedef struct {
  ExecnetRSync *rsync;       /* (unowned) outlives the job */
  Target       *target;      /* (unowned) */
  GPtrArray    *entries;     /* (unowned) (element-type Entry) */
  GHashTable   *by_path;     /* (unowned) path → Entry */
  GCancellable *cancellable; /* (unowned) (nullable) */
  GError       *error;       /* (owned) (nullable) the outcome */
} Job;

/* Waits for the receiver's next item, seeing @cancellable. A remote
 * exception's message is reduced to its last line, which says what the
 * receiver refused and why. */
static GVariant *
receive_item (ExecnetChannel  *channel,
              GCancellable    *cancellable,
              GError         **error)
{
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GVariant *item;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      item = execnet_channel_receive (channel, POLL_SECONDS, &local_error);
      if (item != NULL)
        return item;
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        continue;
      if (g_error_matches (local_error, EXECNET_ERROR, EXECNET_ERROR_REMOTE))
        {
          g_auto(GStrv) lines = g_strsplit (g_strstrip (local_error->message), "\n", -1);
          guint n = g_strv_length (lines);

          const char *text = n > 0 ? strstr (lines[n - 1], RECEIVER_MARK) : NULL;

          if (text != NULL)
            {
              g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE, "%s",
                           text + strlen (RECEIVER_MARK));
              return NULL;
            }
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
}

/* A send failed: the receiver has most likely raised, and its exception
 * says why better than the closed channel does. */
static void
explain_send_failure (ExecnetChannel  *channel,
                      GError         **error)
{
  g_autoptr(GError) remote_error = NULL;
  g_autoptr(GVariant) item = NULL;

  item = receive_item (channel, NULL, &remote_error);
  if (item == NULL && g_error_matches (remote_error, EXECNET_ERROR, EXECNET_ERROR_REMOTE))
    {
      g_clear_error (error);
      g_propagate_error (error, g_steal_pointer (&remote_error));
    }
}

static gboolean
send_item (ExecnetChannel  *channel,
           GVariant        *item,
           GError         **error)
{
  if (execnet_channel_send (channel, item, error))
    return TRUE;
  explain_send_failure (channel, error);
  return FALSE;
}

static gboolean
file_digest_equals (const char  *full,
                    const char  *remote_digest,
                    GError     **error)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guchar *buffer = g_malloc (CHUNK_SIZE);
  int fd = open (full, O_RDONLY | O_CLOEXEC);
  gssize n;

  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "rsync: cannot read the source file %s: %s", full, g_strerror (saved_errno));
      return FALSE;
    }
  while ((n = read (fd, buffer, CHUNK_SIZE)) > 0)
    g_checksum_update (checksum, buffer, n);
  close (fd);
  return g_str_equal (g_checksum_get_string (checksum), remote_digest);
}

static gboolean
stream_file (Job             *job,
             ExecnetChannel  *channel,
             Entry           *entry,
             GError         **error)
{
  g_autofree char *full = g_build_filename (job->rsync->source_dir, entry->path, NULL);
  guint64 done = 0;
  int fd;

  fd = open (full, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "rsync: cannot read the source file %s: %s; the target keeps its old copy",
                   full, g_strerror (saved_errno));
      return FALSE;
    }

  if (!send_item (channel, g_variant_new ("(ssux)", "file", entry->path, entry->mode,
                                          entry->mtime_ns), error))
    goto fail;

  for (;;)
    {
      guchar *buffer = g_malloc (CHUNK_SIZE);
      gssize n = read (fd, buffer, CHUNK_SIZE);
      GBytes *bytes;

      if (n < 0)
        {
          int saved_errno = errno;

          g_free (buffer);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "rsync: cannot read the source file %s: %s", full, g_strerror (saved_errno));
          goto fail;
        }
      if (n == 0)
        {
          g_free (buffer);
          break;
        }
      if (g_cancellable_set_error_if_cancelled (job->cancellable, error))
        {
          g_free (buffer);
          goto fail;
        }
      bytes = g_bytes_new_take (buffer, n);
      if (!send_item (channel, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE),
                      error))
        {
          g_bytes_unref (bytes);
          goto fail;
        }
      g_bytes_unref (bytes);
      done += n;
      queue_progress (job->rsync, job->target->gateway, entry->path, done, MAX (done, entry->size));
    }
  close (fd);
  if (done == 0)
    queue_progress (job->rsync, job->target->gateway, entry->path, 0, 0);
  return send_item (channel, g_variant_new ("(s)", "close"), error);

fail:
  close (fd);
  return FALSE;
}

static GVariant *
entry_list (GPtrArray *entries)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ssxxus)"));
  for (guint i = 0; i < entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (entries, i);
      char type[2] = { entry->type, '\0' };

      g_variant_builder_add (&builder, "(ssxxus)", entry->path, type, (gint64) entry->size,
                             entry->mtime_ns, entry->mode, entry->link);
    }
  return g_variant_builder_end (&builder);
}

static gboolean
sync_target (Job     *job,
             GError **error)
{
  g_autoptr(GBytes) source = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) needs = NULL;
  g_autoptr(GVariant) status = NULL;
  GVariantIter iter;
  GVariant *child;

  source = _execnet_remote_lookup ("/org/execnet/remote/rsync.py");
  channel = execnet_gateway_remote_exec (job->target->gateway, g_bytes_get_data (source, NULL), error);
  if (channel == NULL)
    return FALSE;

  if (!send_item (channel, g_variant_new ("(sb)", job->target->dest_dir,
                                          (job->target->flags & EXECNET_RSYNC_DELETE) != 0), error) ||
      !send_item (channel, entry_list (job->entries), error))
    goto fail;

  needs = receive_item (channel, job->cancellable, error);
  if (needs == NULL)
    goto fail;
  if (!g_variant_is_of_type (needs, G_VARIANT_TYPE_ARRAY))
    goto protocol;

  g_variant_iter_init (&iter, needs);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) pair = child;
      const char *path, *digest;
      Entry *entry;

      if (g_variant_is_of_type (pair, G_VARIANT_TYPE_VARIANT))
        {
          GVariant *inner = g_variant_get_variant (pair);

          g_variant_unref (pair);
          pair = inner;
        }
      if (!g_variant_is_of_type (pair, G_VARIANT_TYPE ("(ss)")))
        goto protocol;
      g_variant_get (pair, "(&s&s)", &path, &digest);
      entry = g_hash_table_lookup (job->by_path, path);
      if (entry == NULL || entry->type != 'f')
        goto protocol;

      if (g_cancellable_set_error_if_cancelled (job->cancellable, error))
        goto fail;
      if (*digest != '\0')
        {
          g_autofree char *full = g_build_filename (job->rsync->source_dir, entry->path, NULL);
          g_autoptr(GError) digest_error = NULL;

          if (file_digest_equals (full, digest, &digest_error))
            {
              if (!send_item (channel, g_variant_new ("(ssux)", "meta", entry->path, entry->mode,
                                                      entry->mtime_ns), error))
                goto fail;
              continue;
            }
          if (digest_error != NULL)
            {
              g_propagate_error (error, g_steal_pointer (&digest_error));
              goto fail;
            }
        }
      if (!stream_file (job, channel, entry, error))
        goto fail;
    }

  if (!send_item (channel, g_variant_new ("(s)", "finish"), error))
    goto fail;
  status = receive_item (channel, job->cancellable, error);
  if (status == NULL)
    goto fail;
  if (!g_variant_is_of_type (status, G_VARIANT_TYPE ("(sxx)")))
    goto protocol;
  execnet_channel_wait_close (channel, 30.0, NULL);
  return TRUE;

protocol:
  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
               "the rsync receiver answered out of turn; check that the remote runs this "
               "library's rsync receiver");
fail:
  execnet_channel_close (channel, NULL, NULL);
  return FALSE;
}

static gpointer
job_thread (gpointer data)
{
  Job *job = data;

  if (!sync_target (job, &job->error))
    g_prefix_error (&job->error, "rsync to %s:%s: ",
                    execnet_gateway_get_id (job->target->gateway), job->target->dest_dir);
  return NULL;
}

/* Any thread: scans once, then runs every target in a thread of its own;
 * the first target's error (in the order added) is the one reported. */
static gboolean
send_all (ExecnetRSync  *self,
          GPtrArray     *targets,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GHashTable) by_path = NULL;
  g_autofree Job *jobs = NULL;
  g_autofree GThread **threads = NULL;
  gboolean ok = TRUE;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  entries = scan_source (self->source_dir, error);
  if (entries == NULL)
    return FALSE;
  by_path = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (entries, i);

      g_hash_table_insert (by_path, entry->path, entry);
    }

  jobs = g_new0 (Job, targets->len);
  threads = g_new0 (GThread *, targets->len);
  for (guint i = 0; i < targets->len; i++)
    {
      jobs[i].rsync = self;
      jobs[i].target = g_ptr_array_index (targets, i);
      jobs[i].entries = entries;
      jobs[i].by_path = by_path;
      jobs[i].cancellable = cancellable;
      threads[i] = g_thread_new ("execnet-rsync", job_thread, &jobs[i]);
    }
  for (guint i = 0; i < targets->len; i++)
    {
      g_thread_join (threads[i]);
      if (jobs[i].error != NULL)
        {
          if (ok)
            g_propagate_error (error, g_steal_pointer (&jobs[i].error));
          g_clear_error (&jobs[i].error);
          ok = FALSE;
        }
    }
  return ok;
}

/**
 * execnet_rsync_send:
 * @self: an #ExecnetRSync
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Copies the source directory to every target, all at once, and returns
 * when all are done. Blocks; see [method@Execnet.RSync.send_async].
 *
 * A missing source fails before anything is sent. The receiver checks
 * every path before it changes anything, so a destination it refuses (not
 * writable, or a path leading outside it through a symbolic link) is left
 * as it was. A failing or cancelled transfer leaves each remote file
 * either old or new: partial files are removed. Other targets go on when
 * one fails; the error names the first failed target.
 *
 * Returns: %TRUE when every target is up to date
 *
 * Since: 1.0
 */
gboolean
execnet_rsync_send (ExecnetRSync  *self,
                    GCancellable  *cancellable,
                    GError       **error)
{
  gboolean ok;

  g_return_val_if_fail (EXECNET_IS_RSYNC (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ok = send_all (self, self->targets, cancellable, error);
  if (_execnet_emitter_is_home (self->emitter))
    _execnet_emitter_flush (self->emitter);
  return ok;
}

static void
send_in_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GError *error = NULL;

  if (send_all (source_object, task_data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * execnet_rsync_send_async:
 * @self: an #ExecnetRSync
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when every target is done
 * @user_data: data for @callback
 *
 * Starts [method@Execnet.RSync.send] without blocking; the targets are
 * those added so far; add no target while it runs. [signal@Execnet.RSync::progress] is emitted as the
 * files go.
 *
 * Since: 1.0
 */
void
execnet_rsync_send_async (ExecnetRSync        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (EXECNET_IS_RSYNC (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_rsync_send_async);
  g_task_set_task_data (task, g_ptr_array_ref (self->targets), (GDestroyNotify) g_ptr_array_unref);
  g_task_run_in_thread (task, send_in_thread);
}

/**
 * execnet_rsync_send_finish:
 * @self: an #ExecnetRSync
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Execnet.RSync.send_async].
 *
 * Returns: %TRUE when every target is up to date
 *
 * Since: 1.0
 */
gboolean
execnet_rsync_send_finish (ExecnetRSync  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
