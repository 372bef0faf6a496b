/* execnet-gateway.c: a connection to one remote Python interpreter
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-transport.h>

#include "execnet-async-private.h"
#include "execnet-bootstrap-private.h"
#include "execnet-channel-private.h"
#include "execnet-debug-private.h"
#include "execnet-emitter-private.h"
#include "execnet-gateway-private.h"
#include "execnet-group-private.h"
#include "execnet-inbox-private.h"
#include "execnet-source-private.h"
#include "execnet-via-private.h"
#include "execnet-io-worker-private.h"
#include "execnet-util-private.h"
#include "execnet-value-private.h"
#include "execnet-wire-private.h"

/**
 * ExecnetGateway:
 *
 * A live connection to a freshly started remote Python interpreter.
 *
 * Gateways are made by an [class@Execnet.Group] from a spec such as `popen`
 * or `ssh=host//chdir=work`. [method@Execnet.Gateway.remote_exec] runs
 * Python source remotely and returns the [class@Execnet.Channel] that the
 * remote code sees as its global `channel`.
 *
 * All gateways of a process share one I/O thread, which reads every
 * connection and routes what arrives to the channels; it never runs user
 * code. A thread blocked in [method@Execnet.Channel.receive] reads its
 * gateway's connection itself meanwhile, in the I/O thread's stead, and
 * routes what arrives the same way (callbacks and signals still run in
 * their own contexts). [method@Execnet.Gateway.exit] asks the remote side to end;
 * [method@Execnet.Group.terminate] also waits for it, and kills what does
 * not end in time.
 *
 * Threads: every method is thread-safe. The signals
 * [signal@Execnet.Gateway::closed] and
 * [signal@Execnet.Gateway::remote-output] are emitted in the main context
 * that was thread-default when the gateway was made (for a synchronous
 * make_gateway, the caller's), never in the I/O thread; that context must
 * be iterated for them to arrive.
 *
 * A gateway that asks its interpreter for the platform:
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(ExecnetGateway) gw = execnet_make_gateway ("popen", &error);
 * g_autoptr(ExecnetChannel) channel = NULL;
 * g_autoptr(GVariant) platform = NULL;
 *
 * if (gw != NULL)
 *   channel = execnet_gateway_remote_exec (gw, "import sys; channel.send(sys.platform)", &error);
 * if (channel != NULL)
 *   platform = execnet_channel_receive (channel, 10.0, &error);
 * if (platform == NULL)
 *   g_printerr ("%s\n", error->message);
 * ```
 *
 * Since: 1.0
 */

/* A gateway's state model. Start-up (transport, bootstrap) happens in the
 * I/O thread; once the agent acknowledged, the gateway gets its wire and is
 * "receiving". Two independent things must happen before it is "ended":
 * reading stops (end-of-file, error or abort) and the remote process ends
 * (the transport's wait completes). When reading stops unexpectedly, the
 * channels are told why only once the process has ended (or a second has
 * passed), so their error can say how it ended: "killed by signal 9".
 *
 * The channel table holds weak references: a channel the user dropped is
 * closed by its dispose(). The table holds a strong reference only while it
 * delivers to a callback; a channel that arrived inside an item is kept
 * alive by the item (hold_channels_in_item()) until claimed. Channels are
 * never unreferenced with the gateway's lock held, since their dispose()
 * takes it. */

typedef struct
{
  GWeakRef ref;                     /* ExecnetChannel */
  ExecnetChannel *held;             /* (owned) (nullable) */
  gboolean unclaimed;               /* made for an item, not claimed yet */
} ChannelSlot;

struct _ExecnetGateway
{
  GObject parent_instance;

  /* Written once, in _execnet_gateway_new() or (via) before the start
   * begins, and never again: read without the lock. */
  ExecnetXSpec *xspec;              /* (owned) */
  ExecnetGateway *via;              /* (owned) (nullable) the gateway that starts this one's interpreter */
  char *id;                         /* (owned) */
  char *type_name;                  /* (owned) "PopenGateway" */
  guint64 start_order;              /* set once by the group, before the start: where it lists it */
  ExecnetEmitter *emitter;          /* (owned) signals, in the context the gateway was made in */
  GWeakRef group;                   /* ExecnetGroup, empty once removed; thread-safe itself */

  GMutex lock;                      /* guards everything below, except where said */
  GCond cond;                       /* signalled when the gateway ends */
  GList *end_waiters;               /* (element-type GTask) (owned) wait_ended_async calls */
  /* connection, wire and description are written under the lock, only in
   * the I/O thread during start-up (and description in
   * _execnet_gateway_new, before the gateway is shared). The I/O thread
   * reads them without the lock. So does code that runs once the start
   * completed, since nothing writes them again (the group hands a gateway
   * out only then), and _execnet_gateway_account(), which reads wire for
   * items the wire delivered. connection and wire stay until finalize. */
  ExecnetConnection *connection;    /* (owned) (nullable) set when the transport connected */
  ExecnetWire *wire;                /* (owned) (nullable) set once bootstrapped */
  char *description;                /* (owned) "gateway gw0 (python3 pid 42)" */
  GHashTable *channels;             /* (element-type gint32 ChannelSlot) (owned) open channels */
  gint32 next_channel_id;           /* the next odd id */
  gboolean exiting;
  gboolean reading_done;
  gboolean process_ended;
  gboolean lost_reported;
  GError *read_error;               /* (owned) (nullable) why reading stopped */
  GSource *lost_timer;              /* (owned) (nullable) */
  gint64 start_time;                /* monotonic: start-up began; written before the I/O
                                     * thread takes part, so its writes of the other
                                     * times come after */
  gint64 connected_time;            /* the transport connected */
  gint64 acknowledged_time;         /* the agent acknowledged the bootstrap */
  ExecnetWireTap *tap;              /* (owned) (nullable) the wire observer, given to the wire once it exists */
};

enum {
  PROP_0,
  PROP_ID,
  PROP_XSPEC,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_CLOSED,
  SIGNAL_REMOTE_OUTPUT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ExecnetGateway, execnet_gateway, G_TYPE_OBJECT)

/* How long the channels' error waits to learn how the remote process ended. */
#define LOST_REPORT_DELAY_MS 1000

static const char info_source[] =
  "import sys, os\n"
  "channel.send(dict(executable=sys.executable, version_info=tuple(sys.version_info[:5]),\n"
  "                  platform=sys.platform, cwd=os.getcwd(), pid=os.getpid()))\n";

/* Any thread: @delta bytes arrived on a channel (positive) or were taken
 * from one (negative); the wire counts them and pauses reading
 * (_execnet_wire_account). The wire is read without the lock: an item
 * exists only once the wire delivered it, in the thread that reads it
 * (after self->wire was set), and reaches other threads through the channel's
 * lock; the wire stays until finalize. A consumer that waits on one
 * channel while another holds 64 MiB nobody takes will wait for ever, as
 * with any bounded pipe. */
void
_execnet_gateway_account (ExecnetGateway *self,
                          gssize          delta)
{
  _execnet_wire_account (self->wire, delta);
}

static void
channel_slot_free (gpointer data)
{
  ChannelSlot *slot = data;

  /* Only ever freed with the held reference already taken out. */
  g_assert (slot->held == NULL);
  g_weak_ref_clear (&slot->ref);
  g_free (slot);
}

static char *
make_type_name (const char *scheme)
{
  g_autofree char *name = g_strdup (scheme != NULL ? scheme : "Unknown");

  name[0] = g_ascii_toupper (name[0]);
  return g_strconcat (name, "Gateway", NULL);
}

ExecnetGateway *
_execnet_gateway_new (ExecnetXSpec *xspec,
                      ExecnetGroup *group)
{
  ExecnetGateway *self = g_object_new (EXECNET_TYPE_GATEWAY, NULL);

  self->xspec = execnet_xspec_ref (xspec);
  self->id = g_strdup (execnet_xspec_get_id (xspec));
  self->type_name = make_type_name (execnet_xspec_get_scheme (xspec));
  self->description = g_strdup_printf ("gateway %s", self->id);
  g_weak_ref_set (&self->group, group);

  return self;
}

static void
execnet_gateway_init (ExecnetGateway *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_weak_ref_init (&self->group, NULL);
  self->emitter = _execnet_emitter_new ();
  self->channels = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, channel_slot_free);
  self->next_channel_id = 1;
}

static void
execnet_gateway_finalize (GObject *object)
{
  ExecnetGateway *self = EXECNET_GATEWAY (object);

  g_assert (self->lost_timer == NULL);
  g_assert (self->end_waiters == NULL);

  g_hash_table_unref (self->channels);
  g_clear_pointer (&self->wire, _execnet_wire_unref);
  g_clear_object (&self->connection);
  g_clear_error (&self->read_error);
  g_clear_pointer (&self->tap, _execnet_wire_tap_unref);
  g_clear_pointer (&self->emitter, _execnet_emitter_free);
  g_weak_ref_clear (&self->group);
  g_clear_pointer (&self->xspec, execnet_xspec_unref);
  g_clear_object (&self->via);
  g_free (self->id);
  g_free (self->type_name);
  g_free (self->description);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (execnet_gateway_parent_class)->finalize (object);
}

static void
execnet_gateway_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  ExecnetGateway *self = EXECNET_GATEWAY (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_XSPEC:
      g_value_set_boxed (value, self->xspec);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_gateway_class_init (ExecnetGatewayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = execnet_gateway_finalize;
  object_class->get_property = execnet_gateway_get_property;

  /**
   * ExecnetGateway:id:
   *
   * The gateway's id in its group, such as `gw0`.
   *
   * Since: 1.0
   */
  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExecnetGateway:xspec:
   *
   * The spec the gateway was made from.
   *
   * Since: 1.0
   */
  properties[PROP_XSPEC] =
    g_param_spec_boxed ("xspec", NULL, NULL, EXECNET_TYPE_XSPEC,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExecnetGateway::closed:
   * @gateway: the gateway
   * @reason: (nullable): why the connection ended, or %NULL if it ended
   *   because the gateway was asked to exit
   *
   * The gateway's connection is over: the remote process ended or was
   * killed, or the connection broke. Emitted once, after the channels were
   * told, in the main context that was thread-default when the gateway
   * was made (never in the I/O thread). Connect before the end can happen:
   * when nothing is connected at that moment, nothing is emitted.
   *
   * Since: 1.0
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);

  /**
   * ExecnetGateway::remote-output:
   * @gateway: the gateway
   * @stream: `stdout` or `stderr`: what the remote process wrote to
   * @data: the bytes it wrote
   *
   * The remote process wrote to its standard output or error, which the
   * agent forwards instead of letting it disturb the protocol. Emitted in
   * the main context that was thread-default when the gateway was made
   * (never in the I/O thread), in the order the output arrived. Output
   * that arrives while nothing is connected is dropped.
   *
   * Since: 1.0
   */
  signals[SIGNAL_REMOTE_OUTPUT] =
    g_signal_new ("remote-output", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BYTES);
}

/* The gateway's context: emits ::closed. */
static void
emit_closed (GObject  *object,
             gpointer  data)
{
  g_signal_emit (object, signals[SIGNAL_CLOSED], 0, (GError *) data);
}

static void
error_free (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

/* Any thread: queues ::closed, if anyone listens. @reason (transfer full) (nullable) */
static void
queue_closed (ExecnetGateway *self,
              GError         *reason)
{
  if (!g_signal_has_handler_pending (self, signals[SIGNAL_CLOSED], 0, TRUE))
    {
      g_clear_error (&reason);
      return;
    }
  _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_closed,
                          reason, error_free);
}

typedef struct
{
  char *stream;                     /* (owned) */
  GBytes *data;                     /* (owned) */
} Output;

static void
output_free (gpointer data)
{
  Output *output = data;

  g_free (output->stream);
  g_bytes_unref (output->data);
  g_free (output);
}

static void
emit_remote_output (GObject  *object,
                    gpointer  data)
{
  Output *output = data;

  g_signal_emit (object, signals[SIGNAL_REMOTE_OUTPUT], 0, output->stream, output->data);
}

/* Any thread: the remote process wrote @data to @stream (`stdout` or
 * `stderr`); ::remote-output follows in the gateway's context. */
void
_execnet_gateway_emit_remote_output (ExecnetGateway *self,
                                     const char     *stream,
                                     GBytes         *data)
{
  Output *output;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));
  g_return_if_fail (stream != NULL && data != NULL);

  if (!g_signal_has_handler_pending (self, signals[SIGNAL_REMOTE_OUTPUT], 0, TRUE))
    return;

  output = g_new0 (Output, 1);
  output->stream = g_strdup (stream);
  output->data = g_bytes_ref (data);
  _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_remote_output,
                          output, output_free);
}

/* Any thread: the main context the gateway was made in. */
GMainContext *
_execnet_gateway_get_context (ExecnetGateway *self)
{
  return _execnet_emitter_get_context (self->emitter);
}

/* Any thread, without the lock: the channel @id as a strong reference, or NULL. */
static ExecnetChannel *
lookup_channel (ExecnetGateway *self,
                gint32          id)
{
  ExecnetChannel *channel = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (id));
  if (slot != NULL)
    channel = g_weak_ref_get (&slot->ref);
  g_mutex_unlock (&self->lock);

  return channel;
}

/* Any thread, without the lock: removes @id from the table and returns its
 * channel as a strong reference, or NULL. */
static ExecnetChannel *
take_channel (ExecnetGateway *self,
              gint32          id)
{
  ExecnetChannel *channel = NULL;
  ExecnetChannel *held = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (id));
  if (slot != NULL)
    {
      channel = g_weak_ref_get (&slot->ref);
      held = g_steal_pointer (&slot->held);
      g_hash_table_remove (self->channels, GINT_TO_POINTER (id));
    }
  g_mutex_unlock (&self->lock);

  g_clear_object (&held);
  return channel;
}

/* The reading thread: the remote side closed @id. Returns its channel as a strong
 * reference, or NULL, and removes it from the table unless it arrived
 * inside a value and is still unclaimed: the remote may close a channel
 * it sent before the master decodes the item, and the items queued on it
 * must still be there when execnet_gateway_channel_from_value() claims it.
 * The slot goes when the channel is disposed: claimed and dropped, or gone
 * with its item. */
static ExecnetChannel *
take_closed_channel (ExecnetGateway *self,
                     gint32          id)
{
  ExecnetChannel *channel = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (id));
  if (slot != NULL && slot->held != NULL)
    channel = g_object_ref (slot->held);
  else if (slot != NULL && slot->unclaimed)
    channel = g_weak_ref_get (&slot->ref);  /* NULL once its item is gone */
  g_mutex_unlock (&self->lock);

  return channel != NULL ? channel : take_channel (self, id);
}

/* Called with the lock held. */
static ExecnetChannel *
register_channel_unlocked (ExecnetGateway *self,
                           gint32          id)
{
  ExecnetChannel *channel = _execnet_channel_new (self, id);
  ChannelSlot *slot = g_new0 (ChannelSlot, 1);

  g_weak_ref_init (&slot->ref, channel);
  g_hash_table_replace (self->channels, GINT_TO_POINTER (id), slot);

  return channel;
}

/* Any thread: the channel @id, made if needed. */
static ExecnetChannel *
ensure_channel (ExecnetGateway *self,
                gint32          id)
{
  ExecnetChannel *channel = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (id));
  if (slot != NULL)
    channel = g_weak_ref_get (&slot->ref);
  if (channel == NULL)
    channel = register_channel_unlocked (self, id);
  g_mutex_unlock (&self->lock);

  return channel;
}

void
_execnet_gateway_forget_channel (ExecnetGateway *self,
                                 gint32          channel_id)
{
  g_autoptr(ExecnetChannel) channel = take_channel (self, channel_id);
}

void
_execnet_gateway_hold_channel (ExecnetGateway *self,
                               ExecnetChannel *channel,
                               gboolean        hold)
{
  ExecnetChannel *released = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (execnet_channel_get_id (channel)));
  if (slot != NULL)
    {
      if (!hold)
        slot->unclaimed = FALSE;
      if (hold && slot->held == NULL)
        slot->held = g_object_ref (channel);
      else if (!hold && slot->held == channel)
        released = g_steal_pointer (&slot->held);
    }
  g_mutex_unlock (&self->lock);

  g_clear_object (&released);
}

/* Any thread: the wire, or NULL before start-up completed. */
static ExecnetWire *
dup_wire (ExecnetGateway *self)
{
  ExecnetWire *wire;

  g_mutex_lock (&self->lock);
  wire = self->wire != NULL ? _execnet_wire_ref (self->wire) : NULL;
  g_mutex_unlock (&self->lock);

  return wire;
}

gboolean
_execnet_gateway_send_value (ExecnetGateway      *self,
                             ExecnetMessageCode   code,
                             gint32               channel,
                             GVariant            *value,
                             GError             **error)
{
  g_autoptr(ExecnetWire) wire = dup_wire (self);
  g_autoptr(GPtrArray) chunks = NULL;

  if (wire == NULL)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                   "gateway %s is not connected", self->id);
      return FALSE;
    }

  if (value != NULL)
    {
      chunks = _execnet_value_encode (value, error);
      if (chunks == NULL)
        return FALSE;
    }

  return _execnet_wire_send (wire, code, channel, chunks, error);
}

/* The channels that one item being decoded names. */
typedef struct
{
  ExecnetGateway *gateway;          /* (unowned) */
  GPtrArray *channels;              /* (owned) (element-type ExecnetChannel) (nullable) */
} ChannelReferences;

static gboolean
on_channel_reference (gint32     channel_id,
                      gpointer   user_data,
                      GError   **error)
{
  ChannelReferences *references = user_data;
  ExecnetGateway *self = references->gateway;
  ExecnetChannel *channel = NULL;
  ChannelSlot *slot;

  g_mutex_lock (&self->lock);
  slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (channel_id));
  if (slot != NULL)
    channel = g_weak_ref_get (&slot->ref);
  if (channel == NULL)
    {
      channel = register_channel_unlocked (self, channel_id);
      slot = g_hash_table_lookup (self->channels, GINT_TO_POINTER (channel_id));
      slot->unclaimed = TRUE;
    }
  g_mutex_unlock (&self->lock);

  if (references->channels == NULL)
    references->channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (references->channels, channel);
  return TRUE;
}

typedef struct
{
  GVariant *value;                  /* (owned) whose data the item's bytes are */
  GPtrArray *channels;              /* (owned) */
} ItemAnchor;

static void
item_anchor_free (gpointer data)
{
  ItemAnchor *anchor = data;

  g_variant_unref (anchor->value);
  g_ptr_array_unref (anchor->channels);
  g_free (anchor);
}

/* An item that names channels keeps them alive while any part of it is
 * alive, and no longer, as an unpickled Python item keeps its Channel
 * objects: a channel nobody claimed (execnet_gateway_channel_from_value())
 * goes with the item, closing itself, instead of piling up in the
 * gateway's table. The item is made serialized, on bytes that own the
 * channel references: every part of a serialized GVariant shares its
 * bytes, and a serialized value is never rebuilt (a tree-form one drops
 * its children when it is serialized). */
static GVariant *
hold_channels_in_item (GVariant  *value,     /* (transfer full) */
                       GPtrArray *channels)  /* (transfer full) */
{
  ItemAnchor *anchor = g_new0 (ItemAnchor, 1);
  g_autoptr(GBytes) bytes = NULL;
  gconstpointer data = g_variant_get_data (value);
  gsize size = g_variant_get_size (value);

  anchor->value = value;
  anchor->channels = channels;
  bytes = g_bytes_new_with_free_func (data, size, item_anchor_free, anchor);

  return g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (value), bytes, TRUE));
}

/* The reading thread: corrupt data arrived; the connection is beyond repair. */
static void
fail_protocol (ExecnetGateway *self,
               GError         *error)  /* (transfer full) */
{
  g_autoptr(ExecnetWire) wire = dup_wire (self);
  g_autoptr(GError) owned = error;

  g_prefix_error (&owned, "%s sent a corrupt message: ", self->description);
  _execnet_wire_abort (wire, owned);
  execnet_connection_terminate (self->connection, TRUE);
}

/* The channel on which our agent sends what the remote process writes to
 * its stdout and stderr, and forwarded log records (doc/protocol.md). */
#define EXECNET_OUTPUT_CHANNEL (-1)

/* The reading thread: a log record that the remote's logging forwarded (see
 * execnet_gateway_forward_logging()), into the structured log with the
 * gateway's id as a field. */
static void
log_remote_record (ExecnetGateway *self,
                   GVariant       *value)
{
  g_autoptr(GVariant) record = g_variant_get_child_value (value, 1);
  const char *message = "", *logger = "", *level_name = "", *file = "", *func = "";
  gint64 level = 0, line = 0;
  g_autofree char *line_text = NULL;
  GLogLevelFlags flags;

  g_variant_lookup (record, "message", "&s", &message);
  g_variant_lookup (record, "name", "&s", &logger);
  g_variant_lookup (record, "levelname", "&s", &level_name);
  g_variant_lookup (record, "levelno", "x", &level);
  g_variant_lookup (record, "pathname", "&s", &file);
  g_variant_lookup (record, "lineno", "x", &line);
  g_variant_lookup (record, "funcName", "&s", &func);
  line_text = g_strdup_printf ("%" G_GINT64_FORMAT, line);

  /* Python's ERROR and CRITICAL are not GLib's (which abort): they come
   * as warnings, with the Python level in PYTHON_LEVEL. */
  if (level >= 30)
    flags = G_LOG_LEVEL_WARNING;
  else if (level >= 20)
    flags = G_LOG_LEVEL_INFO;
  else
    flags = G_LOG_LEVEL_DEBUG;

  {
    const GLogField fields[] = {
      { "GLIB_DOMAIN", "execnet-remote", -1 },
      { "MESSAGE", message, -1 },
      { "EXECNET_GATEWAY", self->id, -1 },
      { "PYTHON_LOGGER", logger, -1 },
      { "PYTHON_LEVEL", level_name, -1 },
      { "CODE_FILE", file, -1 },
      { "CODE_LINE", line_text, -1 },
      { "CODE_FUNC", func, -1 },
    };

    g_log_structured_array (flags, fields, G_N_ELEMENTS (fields));
  }
}

/* The reading thread: remote output. Goes to ::remote-output when something is
 * connected, to the master's own stderr otherwise; a forwarded log record
 * goes to the structured log. */
static void
on_remote_output (ExecnetGateway *self,
                  GBytes         *payload)
{
  g_autoptr(GVariant) value = _execnet_value_decode (payload, NULL, NULL, NULL);
  g_autoptr(GVariant) data = NULL;
  const char *stream = NULL;

  if (value != NULL && g_variant_is_of_type (value, G_VARIANT_TYPE ("(sa{sv})")))
    {
      log_remote_record (self, value);
      return;
    }
  if (value == NULL || !g_variant_is_of_type (value, G_VARIANT_TYPE ("(say)")))
    {
      EXECNET_NOTE (GATEWAY, self->id, "%s: ignored output that is not (stream, bytes)", self->description);
      return;
    }

  g_variant_get (value, "(&s@ay)", &stream, &data);
  if (g_signal_has_handler_pending (self, signals[SIGNAL_REMOTE_OUTPUT], 0, TRUE))
    {
      g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (data);

      _execnet_gateway_emit_remote_output (self, g_str_equal (stream, "stdout") ? "stdout" : "stderr",
                                           bytes);
    }
  else
    {
      gsize size;
      const char *bytes = g_variant_get_fixed_array (data, &size, 1);

      /* As the remote's stderr always did. */
      execnet_transport_write_stderr (bytes, size);
    }
}

/* The reading thread (the I/O thread, or a receive that leads): one
 * frame arrived. Whatever it hands on goes through inboxes and emitters,
 * so that it never runs user code in a leading receive either. */
static void
on_frame (GObject            *owner,
          ExecnetMessageCode  code,
          gint32              channel_id,
          GBytes             *payload)
{
  ExecnetGateway *self = EXECNET_GATEWAY (owner);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  GError *error = NULL;

  switch (code)
    {
    case EXECNET_MESSAGE_CHANNEL_DATA:
      if (channel_id == EXECNET_OUTPUT_CHANNEL)
        {
          on_remote_output (self, payload);
          return;
        }
      channel = lookup_channel (self, channel_id);
      if (channel == NULL)
        {
          EXECNET_NOTE (GATEWAY, self->id, "%s: dropped data for channel %d, which is not open",
                        self->description, channel_id);
          return;
        }
      {
        ChannelReferences references = { self, NULL };

        value = _execnet_value_decode (payload, on_channel_reference, &references, &error);
        if (value != NULL && references.channels != NULL)
          value = hold_channels_in_item (g_steal_pointer (&value), g_steal_pointer (&references.channels));
        g_clear_pointer (&references.channels, g_ptr_array_unref);
      }
      if (value == NULL && g_error_matches (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE))
        {
          /* Intact, but with no GVariant form: that receive fails, the
           * channel and the gateway go on. */
          g_prefix_error (&error, "an item on channel %d cannot be represented: ", channel_id);
          _execnet_channel_deliver_error (channel, error);
          return;
        }
      if (value == NULL)
        {
          fail_protocol (self, error);
          return;
        }
      _execnet_channel_deliver (channel, g_steal_pointer (&value), g_bytes_get_size (payload));
      break;

    case EXECNET_MESSAGE_CHANNEL_CLOSE:
    case EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE:
      channel = take_closed_channel (self, channel_id);
      if (channel != NULL)
        _execnet_channel_remote_closed (channel, NULL, code == EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE);
      break;

    case EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR:
      {
        g_autofree char *text = NULL;

        value = _execnet_value_decode (payload, NULL, NULL, &error);
        if (value == NULL)
          {
            fail_protocol (self, error);
            return;
          }
        if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
          text = g_variant_dup_string (value, NULL);
        else
          text = g_variant_print (value, FALSE);

        channel = take_closed_channel (self, channel_id);
        if (channel != NULL)
          _execnet_channel_remote_closed (channel, text, FALSE);
        else
          EXECNET_NOTE (GATEWAY, self->id, "%s: channel %d, already gone, closed with error: %s",
                        self->description, channel_id, text);
      }
      break;

    case EXECNET_MESSAGE_CHANNEL_EXEC:
      {
        /* Code runs on the remote side only; refuse as execnet does. */
        g_autoptr(GVariant) text = g_variant_ref_sink (g_variant_new_string ("execution disallowed"));

        _execnet_gateway_send_value (self, EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR, channel_id, text, NULL);
      }
      break;

    case EXECNET_MESSAGE_STATUS:
    case EXECNET_MESSAGE_RECONFIGURE:
    case EXECNET_MESSAGE_GATEWAY_TERMINATE:
    default:
      /* A master is not asked to execute or report anything. */
      EXECNET_NOTE (GATEWAY, self->id, "%s: ignored a %s message from the remote side",
                    self->description, execnet_message_code_name (code));
      break;
    }
}

/* Called with the lock held: whether the gateway has ended, or never
 * started and so has nothing to wait for. */
static gboolean
ended_unlocked (ExecnetGateway *self)
{
  /* A start that failed after the transport connected never gets a
   * wire: the process ending is the end then. */
  return (self->process_ended && (self->reading_done || self->wire == NULL)) ||
         (self->wire == NULL && self->connection == NULL);
}

/* Called with the lock held: the wait_ended_async calls to complete, once
 * the gateway has ended. */
static GList *
take_end_waiters_unlocked (ExecnetGateway *self)
{
  if (!ended_unlocked (self))
    return NULL;
  return g_steal_pointer (&self->end_waiters);
}

static void
complete_end_waiters (GList *waiters)  /* (transfer full) */
{
  for (GList *l = waiters; l != NULL; l = l->next)
    {
      _execnet_task_return_boolean (l->data, TRUE);
      g_object_unref (l->data);
    }
  g_list_free (waiters);
}

/* The waiter's context: its cancellable fired. */
static gboolean
on_wait_ended_cancelled (GCancellable *cancellable,
                         gpointer      user_data)
{
  GTask *task = user_data;
  ExecnetGateway *self = g_task_get_source_object (task);
  GList *link;

  g_mutex_lock (&self->lock);
  link = g_list_find (self->end_waiters, task);
  if (link != NULL)
    self->end_waiters = g_list_delete_link (self->end_waiters, link);
  g_mutex_unlock (&self->lock);

  if (link != NULL)
    {
      _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      "the operation was cancelled");
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

/* Any thread: completes in the caller's context once the remote process
 * ended and reading stopped (at once if the gateway never started), or
 * fails with G_IO_ERROR_CANCELLED. */
void
_execnet_gateway_wait_ended_async (ExecnetGateway      *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  gboolean ended;

  g_task_set_source_tag (task, _execnet_gateway_wait_ended_async);
  /* Holds the task only while it waits: completing destroys it. */
  g_task_set_task_data (task, _execnet_cancel_source_new (cancellable,
                                                          G_SOURCE_FUNC (on_wait_ended_cancelled),
                                                          task, NULL),
                        (GDestroyNotify) _execnet_cancel_source_free);

  g_mutex_lock (&self->lock);
  ended = ended_unlocked (self);
  if (!ended)
    self->end_waiters = g_list_prepend (self->end_waiters, g_object_ref (task));
  g_mutex_unlock (&self->lock);

  if (ended)
    _execnet_task_return_boolean (task, TRUE);
}

gboolean
_execnet_gateway_wait_ended_finish (ExecnetGateway  *self,
                                    GAsyncResult    *result,
                                    GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Any thread but the I/O thread: a receive that would block reads the
 * stream itself, if it may (see _execnet_wire_lead()). */
gboolean
_execnet_gateway_lead (ExecnetGateway *self,
                       gboolean      (*done) (gpointer data),
                       gpointer        data,
                       gint64          deadline)
{
  g_autoptr(ExecnetWire) wire = dup_wire (self);

  return wire != NULL && _execnet_wire_lead (wire, done, data, deadline);
}

/* Any thread: a receive that reads the stream looks again at its channel. */
void
_execnet_gateway_wake_leader (ExecnetGateway *self)
{
  g_autoptr(ExecnetWire) wire = dup_wire (self);

  if (wire != NULL)
    _execnet_wire_wake_leader (wire);
}

/* Any thread: whether a send would wait for room in the write queue. */
gboolean
_execnet_gateway_is_congested (ExecnetGateway *self)
{
  g_autoptr(ExecnetWire) wire = dup_wire (self);

  return wire != NULL && _execnet_wire_is_congested (wire);
}

/* I/O thread: tells every open channel that the connection is over. */
static void
report_lost (ExecnetGateway *self)
{
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  gboolean clean = FALSE;
  GHashTableIter iter;
  gpointer value;
  gboolean truncated;

  g_mutex_lock (&self->lock);
  if (self->lost_reported)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->lost_reported = TRUE;
  if (self->lost_timer != NULL)
    {
      g_source_destroy (self->lost_timer);
      g_clear_pointer (&self->lost_timer, g_source_unref);
    }

  truncated = g_error_matches (self->read_error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT);
  if (truncated)
    g_clear_error (&self->read_error);

  if (self->read_error != NULL &&
           (self->read_error->domain != G_IO_ERROR || self->read_error->code != G_IO_ERROR_CANCELLED))
    {
      gboolean silent = g_error_matches (self->read_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

      error = g_error_copy (self->read_error);
      if (error->domain != EXECNET_ERROR)
        {
          error->domain = EXECNET_ERROR;
          error->code = EXECNET_ERROR_GATEWAY_CLOSED;
          g_prefix_error (&error, "%s lost its connection: ", self->description);
        }
      /* TCP gave up on a peer that stopped answering (keepalive). */
      if (silent)
        {
          char *message = g_strconcat (error->message,
                                       "; the other end stopped answering: check that "
                                       "its host is up and the network between reaches it",
                                       NULL);

          g_free (error->message);
          error->message = message;
        }
    }
  else if (self->exiting)
    {
      clean = TRUE;
      error = g_error_new (EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                           "%s has exited", self->description);
    }
  else
    {
      g_autofree char *how = NULL;

      how = self->process_ended
              ? _execnet_describe_exit_status (execnet_connection_get_exit_status (self->connection))
              : g_strdup ("closed the connection");
      error = g_error_new (EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                           "%s lost its connection%s: the remote process %s",
                           self->description,
                           truncated ? " in the middle of a message" : "", how);
    }

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      ChannelSlot *slot = value;
      ExecnetChannel *channel = g_weak_ref_get (&slot->ref);

      if (channel != NULL)
        g_ptr_array_add (channels, channel);
      if (slot->held != NULL)
        g_ptr_array_add (held, g_steal_pointer (&slot->held));
    }
  g_hash_table_remove_all (self->channels);
  g_mutex_unlock (&self->lock);

  EXECNET_NOTE (GATEWAY, self->id, "%s: %s", self->description, error->message);

  for (guint i = 0; i < channels->len; i++)
    _execnet_channel_connection_lost (g_ptr_array_index (channels, i), error);

  queue_closed (self, clean ? NULL : g_error_copy (error));
}

static gboolean
on_lost_timer (gpointer data)
{
  report_lost (data);
  return G_SOURCE_REMOVE;
}

/* I/O thread, once: reading stopped. */
static void
on_read_closed (GObject      *owner,
                const GError *error)
{
  ExecnetGateway *self = EXECNET_GATEWAY (owner);
  gboolean report_now;
  GList *ended;

  /* Garbage on the wire: whatever sent it is beyond repair, and nothing
   * else will end it, so end it now. */
  if (g_error_matches (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL))
    execnet_connection_terminate (self->connection, TRUE);

  g_mutex_lock (&self->lock);
  self->reading_done = TRUE;
  if (error != NULL)
    self->read_error = g_error_copy (error);
  /* Half a message means the remote died while writing: wait, as for a
   * plain end, to say how it ended. */
  report_now = self->process_ended || self->exiting ||
               (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT));
  if (!report_now)
    {
      self->lost_timer = g_timeout_source_new (LOST_REPORT_DELAY_MS);
      g_source_set_callback (self->lost_timer, on_lost_timer, g_object_ref (self), g_object_unref);
      g_source_attach (self->lost_timer, g_main_context_get_thread_default ());
    }
  g_cond_broadcast (&self->cond);
  ended = take_end_waiters_unlocked (self);
  g_mutex_unlock (&self->lock);

  /* ::closed is queued before anyone waiting for the end hears of it. */
  if (report_now)
    report_lost (self);
  complete_end_waiters (ended);
}

static const ExecnetWireHandler wire_handler = {
  .frame = on_frame,
  .read_closed = on_read_closed,
};

/* I/O thread: the remote process ended. */
static void
on_process_ended (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(ExecnetGateway) self = user_data;
  gboolean report;
  GList *ended;

  execnet_connection_wait_finish (EXECNET_CONNECTION (source), result, NULL);

  g_mutex_lock (&self->lock);
  self->process_ended = TRUE;
  report = self->reading_done && !self->lost_reported;
  g_cond_broadcast (&self->cond);
  ended = take_end_waiters_unlocked (self);
  g_mutex_unlock (&self->lock);

  EXECNET_NOTE (GATEWAY, self->id, "%s: the remote process ended", self->description);

  if (report)
    report_lost (self);
  complete_end_waiters (ended);
}

/* I/O thread: with agent=execnet, the remote setup finished. */
static void
on_setup_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetGateway *self = g_task_get_source_object (task);
  g_autoptr(GVariant) reply = NULL;
  GError *error = NULL;

  reply = execnet_channel_receive_finish (EXECNET_CHANNEL (source), result, &error);
  if (reply == NULL)
    {
      g_prefix_error (&error, "%s cannot apply chdir/nice/env: ", self->description);
      execnet_connection_terminate (self->connection, TRUE);
      _execnet_task_return_error (task, error);
      return;
    }

  EXECNET_NOTE (GATEWAY, self->id, "%s: ready", self->description);
  EXECNET_PHASE (self->id, "ready", "the agent answered");
  _execnet_task_return_boolean (task, TRUE);
}

/* What a start works with, the data of its task. */
typedef struct
{
  ExecnetTransport *transport;      /* (owned) (nullable) none for via= */
  ExecnetXSpec *open_xspec;         /* (owned) (nullable) what the transport prepared */
  ExecnetConnection *connection;    /* (owned) (nullable) via='s, opened before the I/O thread */
} StartData;

static void
start_data_free (gpointer data)
{
  StartData *start = data;

  g_clear_pointer (&start->open_xspec, execnet_xspec_unref);
  g_clear_object (&start->connection);
  g_clear_object (&start->transport);
  g_free (start);
}

static void
on_bootstrapped (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetGateway *self = g_task_get_source_object (task);
  ExecnetConnection *connection = EXECNET_CONNECTION (source);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autofree char *setup = NULL;
  GError *error = NULL;

  /* I/O thread */
  if (!_execnet_bootstrap_finish (connection, result, &error))
    {
      StartData *start = g_task_get_task_data (task);
      GError *explained = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        ;
      else if (self->via != NULL)
        explained = _execnet_via_explain_failure (self->via, self->xspec, connection);
      else
        explained = execnet_transport_explain_failure (start->transport, start->open_xspec,
                                                       connection, error);
      if (explained != NULL)
        {
          g_error_free (error);
          error = explained;
        }
      execnet_connection_terminate (connection, TRUE);
      _execnet_task_return_error (task, error);
      return;
    }

  g_mutex_lock (&self->lock);
  self->acknowledged_time = g_get_monotonic_time ();
  self->wire = _execnet_wire_new (connection, self->id, self->description, &wire_handler, G_OBJECT (self));
  if (self->tap != NULL)
    _execnet_wire_set_tap (self->wire, self->tap);
  g_mutex_unlock (&self->lock);

  setup = _execnet_bootstrap_setup_source (self->xspec);
  if (setup != NULL && g_strcmp0 (execnet_xspec_get (self->xspec, "agent"), "execnet") == 0)
    {
      /* A foreign agent applied nothing of the spec: do it now, before the
       * gateway is handed out. */
      channel = execnet_gateway_remote_exec (self, setup, &error);
      if (channel == NULL)
        {
          _execnet_task_return_error (task, error);
          return;
        }
      execnet_channel_receive_async (channel, NULL, on_setup_done, g_steal_pointer (&task));
      return;
    }

  EXECNET_NOTE (GATEWAY, self->id, "%s: ready", self->description);
  EXECNET_PHASE (self->id, "ready", "the agent answered");
  _execnet_task_return_boolean (task, TRUE);
}

static void connected (GTask             *task,
                       ExecnetConnection *connection);

static void
on_opened (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  ExecnetConnection *connection;
  GError *error = NULL;

  /* I/O thread */
  connection = execnet_transport_open_finish (EXECNET_TRANSPORT (source), result, &error);
  if (connection == NULL)
    {
      _execnet_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  connected (task, connection);
}

/* I/O thread: the interpreter is reachable through @connection (transfer
 * full); bootstraps it. Takes @task. */
static void
connected (GTask             *task,
           ExecnetConnection *connection)
{
  ExecnetGateway *self = g_task_get_source_object (task);
  GCancellable *cancellable;

  g_mutex_lock (&self->lock);
  self->connection = connection;
  self->connected_time = g_get_monotonic_time ();
  g_free (self->description);
  self->description = g_strdup_printf ("gateway %s (%s)", self->id,
                                       execnet_connection_get_remote_address (connection));
  g_mutex_unlock (&self->lock);

  EXECNET_NOTE (GATEWAY, self->id, "%s: connected, bootstrapping", self->description);
  EXECNET_PHASE (self->id, "bootstrap", "sending the agent to %s",
                 execnet_connection_get_remote_address (connection));

  /* Watching for the end from the start means the process is reaped
   * whatever happens next. */
  execnet_connection_wait_async (connection, NULL, on_process_ended, g_object_ref (self));
  cancellable = g_task_get_cancellable (task);
  _execnet_bootstrap_async (connection, self->xspec, self->id, cancellable,
                            on_bootstrapped, task);
}

static gboolean
start_in_io_thread (gpointer data)
{
  GTask *task = data;
  StartData *start = g_task_get_task_data (task);

  if (start->connection != NULL)
    connected (task, g_steal_pointer (&start->connection));
  else
    execnet_transport_open_async (start->transport, start->open_xspec,
                                  g_task_get_cancellable (task), on_opened, task);
  return G_SOURCE_REMOVE;
}

/* The calling thread: the transport prepared the spec it opens next. */
static void
on_prepared (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  StartData *start = g_task_get_task_data (task);
  GError *error = NULL;

  start->open_xspec = execnet_transport_prepare_finish (start->transport, result, &error);
  if (start->open_xspec == NULL)
    {
      _execnet_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  _execnet_io_worker_invoke (start_in_io_thread, task, NULL);
}

/* Before start: the interpreter is to be started by @via's agent. */
void
_execnet_gateway_set_via (ExecnetGateway *self,
                          ExecnetGateway *via)
{
  g_set_object (&self->via, via);
}

/* The gateway that started this one's interpreter, or NULL. (transfer none) */
ExecnetGateway *
_execnet_gateway_get_via (ExecnetGateway *self)
{
  return self->via;
}

/* Before start, by the group: the position of its start among the
 * group's, by which the group lists its members. */
void
_execnet_gateway_set_start_order (ExecnetGateway *self,
                                  guint64         start_order)
{
  self->start_order = start_order;
}

guint64
_execnet_gateway_get_start_order (ExecnetGateway *self)
{
  return self->start_order;
}

/* Any thread: connects and bootstraps; completes in the caller's
 * thread-default main context. */
void
_execnet_gateway_start_async (ExecnetGateway      *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(ExecnetGroup) group = NULL;
  const char *scheme = execnet_xspec_get_scheme (self->xspec);
  StartData *start = g_new0 (StartData, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, _execnet_gateway_start_async);
  g_task_set_task_data (task, start, start_data_free);
  self->start_time = g_get_monotonic_time ();

  if (self->via != NULL)
    {
      /* Sends on the via gateway's channel, which may wait for room: done
       * here, never in the I/O thread. */
      start->connection = _execnet_via_connect (self->via, self->xspec, &error);
      if (start->connection == NULL)
        {
          _execnet_task_return_error (task, error);
          return;
        }
      _execnet_io_worker_invoke (start_in_io_thread, g_steal_pointer (&task), NULL);
      return;
    }

  if (scheme == NULL)
    {
      g_auto(GStrv) schemes = execnet_transport_list_schemes ();
      g_autofree char *known = g_strjoinv (", ", schemes);

      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                                      "the spec “%s” names no transport; start it with one of: %s "
                                      "(for example popen, ssh=HOST or socket=HOST:PORT)",
                                      execnet_xspec_to_string (self->xspec),
                                      *known != '\0' ? known : "none found");
      return;
    }

  start->transport = execnet_transport_new_for_scheme (scheme, &error);
  if (start->transport == NULL)
    {
      _execnet_task_return_error (task, error);
      return;
    }

  if (!execnet_transport_check_xspec (start->transport, self->xspec, &error))
    {
      _execnet_task_return_error (task, error);
      return;
    }

  /* Here, in the calling thread: preparing may use other gateways of the
   * group (installvia= sends on one), which may wait for room. */
  group = g_weak_ref_get (&self->group);
  execnet_transport_prepare_async (start->transport, group, self->xspec, cancellable,
                                   on_prepared, g_steal_pointer (&task));
}

gboolean
_execnet_gateway_start_finish (ExecnetGateway  *self,
                               GAsyncResult    *result,
                               GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Any thread: waits until the remote process ended and reading stopped,
 * up to @deadline (monotonic; negative waits for ever). */
gboolean
_execnet_gateway_wait_ended (ExecnetGateway *self,
                             gint64          deadline)
{
  gboolean ended;

  g_mutex_lock (&self->lock);
  while (!ended_unlocked (self))
    {
      if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
        break;
    }
  ended = ended_unlocked (self);
  g_mutex_unlock (&self->lock);

  return ended;
}

/* Any thread: ends the remote process at once. */
void
_execnet_gateway_kill (ExecnetGateway *self)
{
  g_autoptr(ExecnetWire) wire = NULL;
  g_autoptr(ExecnetConnection) connection = NULL;
  g_autofree char *description = NULL;
  g_autoptr(GError) error = NULL;

  /* Possibly while the I/O thread still starts it: copy under the lock. */
  g_mutex_lock (&self->lock);
  wire = self->wire != NULL ? _execnet_wire_ref (self->wire) : NULL;
  connection = self->connection != NULL ? g_object_ref (self->connection) : NULL;
  description = g_strdup (self->description);
  g_mutex_unlock (&self->lock);

  EXECNET_NOTE (GATEWAY, self->id, "%s: killing it", description);

  error = g_error_new (EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                       "%s was killed: it did not end within the termination timeout",
                       description);
  if (connection != NULL)
    execnet_connection_terminate (connection, TRUE);
  if (wire != NULL)
    _execnet_wire_abort (wire, error);
}

void
_execnet_gateway_clear_group (ExecnetGateway *self)
{
  g_weak_ref_set (&self->group, NULL);
}

/**
 * execnet_gateway_get_id:
 * @self: a gateway
 *
 * Gets the gateway's id in its group.
 *
 * Returns: the gateway's id, such as `gw0`
 *
 * Since: 1.0
 */
const char *
execnet_gateway_get_id (ExecnetGateway *self)
{
  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  return self->id;
}

/**
 * execnet_gateway_get_xspec:
 * @self: a gateway
 *
 * Gets the spec the gateway was made from.
 *
 * Returns: (transfer none): the spec the gateway was made from
 *
 * Since: 1.0
 */
ExecnetXSpec *
execnet_gateway_get_xspec (ExecnetGateway *self)
{
  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  return self->xspec;
}

/**
 * execnet_gateway_get_group:
 * @self: a gateway
 *
 * The group the gateway belongs to. A gateway leaves its group when it
 * exits.
 *
 * Returns: (transfer none) (nullable): the group, or %NULL once removed
 *
 * Since: 1.0
 */
ExecnetGroup *
execnet_gateway_get_group (ExecnetGateway *self)
{
  ExecnetGroup *group;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  group = g_weak_ref_get (&self->group);
  if (group != NULL)
    g_object_unref (group);  /* the group outlives its members' use of it */
  return group;
}

/**
 * execnet_gateway_get_remote_address:
 * @self: a gateway
 *
 * Gets where the remote interpreter runs.
 *
 * Returns: (nullable): where the remote interpreter runs, as its transport
 *   describes it (`python3 pid 42`, `alice@node7:22`)
 *
 * Since: 1.0
 */
const char *
execnet_gateway_get_remote_address (ExecnetGateway *self)
{
  ExecnetConnection *connection;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  /* The connection, once set, lives as long as the gateway: so does the
   * string. */
  g_mutex_lock (&self->lock);
  connection = self->connection;
  g_mutex_unlock (&self->lock);

  return connection != NULL ? execnet_connection_get_remote_address (connection) : NULL;
}

/**
 * execnet_gateway_new_channel:
 * @self: a gateway
 *
 * Opens a new channel, to be handed to remote code over another channel
 * (see [method@Execnet.Channel.to_value]).
 *
 * Returns: (transfer full): the channel
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_new_channel (ExecnetGateway *self)
{
  ExecnetChannel *channel;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  g_mutex_lock (&self->lock);
  channel = register_channel_unlocked (self, self->next_channel_id);
  self->next_channel_id += 2;
  g_mutex_unlock (&self->lock);

  return channel;
}

/**
 * execnet_gateway_channel_from_value:
 * @self: a gateway
 * @value: a channel value received from this gateway (an object path)
 *
 * The channel a received value refers to: the remote code sent a channel
 * object. The gateway keeps such a channel alive until it is claimed here.
 *
 * Returns: (transfer full) (nullable): the channel, or %NULL if @value is
 *   not a channel value
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_channel_from_value (ExecnetGateway *self,
                                    GVariant       *value)
{
  g_autoptr(GVariant) owned = NULL;
  ExecnetChannel *channel;
  gint32 id;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (value != NULL, NULL);

  owned = g_variant_ref_sink (value);
  if (!g_variant_is_of_type (owned, G_VARIANT_TYPE_OBJECT_PATH) ||
      !_execnet_channel_path_parse (g_variant_get_string (owned, NULL), &id))
    return NULL;

  channel = ensure_channel (self, id);
  /* Claimed: the table no longer needs to keep it alive. */
  _execnet_gateway_hold_channel (self, channel, FALSE);

  return channel;
}

/**
 * execnet_gateway_remote_call_full:
 * @self: a gateway
 * @source: Python source to run remotely
 * @file_name: (nullable): the file name remote tracebacks give @source, as
 *   in `File "tasks.py", line 3`; %NULL for `<remote exec>`
 * @function: (nullable): a function defined by @source to call as
 *   `function(channel, **kwargs)` after running it
 * @kwargs: (nullable): the keyword arguments, an `a{sv}` dictionary; a
 *   floating reference is sunk
 * @error: return location for a #GError
 *
 * Runs @source in the remote interpreter, then calls @function, as execnet's
 * `remote_exec(func, **kwargs)` does. The code sees the returned channel as
 * its global `channel`, and `__name__` is `"__channelexec__"`.
 *
 * @source is dedented first, as execnet does: the indentation all its
 * non-blank lines share is removed, so code can be written indented in a
 * C string or a triple-quoted Python string.
 *
 * Keyword arguments go to @function: @kwargs that are not empty without a
 * @function are refused with %G_IO_ERROR_INVALID_ARGUMENT rather than
 * dropped.
 *
 * Returns: (transfer full): the channel, or %NULL if the gateway is closed
 *   or the arguments do not go together
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_remote_call_full (ExecnetGateway  *self,
                                  const char      *source,
                                  const char      *file_name,
                                  const char      *function,
                                  GVariant        *kwargs,
                                  GError         **error)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) owned_kwargs = NULL;
  g_autoptr(GVariant) task = NULL;
  g_autofree char *dedented = NULL;
  GVariant *items[4];

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (source != NULL, NULL);
  g_return_val_if_fail (kwargs == NULL || g_variant_is_of_type (kwargs, G_VARIANT_TYPE ("a{sv}")), NULL);

  if (kwargs != NULL)
    owned_kwargs = g_variant_ref_sink (kwargs);

  if (function == NULL && owned_kwargs != NULL && g_variant_n_children (owned_kwargs) > 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "remote_call on %s: keyword arguments were given but no function "
                   "to pass them to; name the function @source defines", self->id);
      return NULL;
    }

  if (!g_utf8_validate (source, -1, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "remote_exec on %s: the source is not valid UTF-8; "
                   "Python source must be sent as UTF-8 text", self->id);
      return NULL;
    }

  dedented = _execnet_dedent (source);
  items[0] = g_variant_new_string (dedented);
  items[1] = file_name != NULL ? g_variant_new_string (file_name)
                               : g_variant_new_maybe (G_VARIANT_TYPE_STRING, NULL);
  items[2] = function != NULL ? g_variant_new_string (function)
                              : g_variant_new_maybe (G_VARIANT_TYPE_STRING, NULL);
  /* g_variant_new_tuple() takes its own reference on a non-floating child. */
  items[3] = owned_kwargs != NULL ? owned_kwargs
                                  : g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
  task = g_variant_ref_sink (g_variant_new_tuple (items, 4));

  channel = execnet_gateway_new_channel (self);
  if (!_execnet_gateway_send_value (self, EXECNET_MESSAGE_CHANNEL_EXEC,
                                    execnet_channel_get_id (channel), task, error))
    {
      _execnet_gateway_forget_channel (self, execnet_channel_get_id (channel));
      execnet_channel_close (channel, NULL, NULL);
      return NULL;
    }

  return g_steal_pointer (&channel);
}

/**
 * execnet_gateway_remote_call:
 * @self: a gateway
 * @source: Python source to run remotely
 * @function: (nullable): a function defined by @source to call as
 *   `function(channel, **kwargs)` after running it
 * @kwargs: (nullable): the keyword arguments, an `a{sv}` dictionary; a
 *   floating reference is sunk
 * @error: return location for a #GError
 *
 * Runs @source in the remote interpreter, then calls @function, as execnet's
 * `remote_exec(func, **kwargs)` does. This is
 * [method@Execnet.Gateway.remote_call_full] without a file name.
 *
 * Returns: (transfer full): the channel, or %NULL if the gateway is closed
 *   or @kwargs were given without @function
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_remote_call (ExecnetGateway  *self,
                             const char      *source,
                             const char      *function,
                             GVariant        *kwargs,
                             GError         **error)
{
  return execnet_gateway_remote_call_full (self, source, NULL, function, kwargs, error);
}

/**
 * execnet_gateway_remote_exec:
 * @self: a gateway
 * @source: Python source to run remotely
 * @error: return location for a #GError
 *
 * Runs @source in the remote interpreter. The code sees the returned
 * channel as its global `channel`. When it finishes the channel closes; if
 * it raises, receiving on the channel fails with %EXECNET_ERROR_REMOTE and
 * the remote traceback. @source is dedented first, as execnet does (see
 * [method@Execnet.Gateway.remote_call_full]).
 *
 * ```c
 * channel = execnet_gateway_remote_exec (gateway,
 *     "    import os\n"
 *     "    channel.send(os.getpid())\n", &error);
 * ```
 *
 * Returns: (transfer full): the channel, or %NULL if the gateway is closed
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_remote_exec (ExecnetGateway  *self,
                             const char      *source,
                             GError         **error)
{
  return execnet_gateway_remote_call_full (self, source, NULL, NULL, NULL, error);
}

/* Reads a whole source file for remote_exec_file(): its text and the name
 * tracebacks give it. */
gboolean
_execnet_load_source_file (GFile         *file,
                           GCancellable  *cancellable,
                           char         **out_source,
                           char         **out_file_name,
                           GError       **error)
{
  g_autofree char *contents = NULL;
  gsize length;

  if (!g_file_load_contents (file, cancellable, &contents, &length, NULL, error))
    {
      g_prefix_error (error, "remote_exec_file: ");
      return FALSE;
    }

  if (memchr (contents, '\0', length) != NULL || !g_utf8_validate (contents, length, NULL))
    {
      g_autofree char *name = g_file_get_parse_name (file);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "remote_exec_file: “%s” is not UTF-8 text; send Python source "
                   "encoded as UTF-8", name);
      return FALSE;
    }

  *out_source = g_steal_pointer (&contents);
  /* A local path reads best in a traceback, a URI otherwise. */
  *out_file_name = g_file_get_path (file);
  if (*out_file_name == NULL)
    *out_file_name = g_file_get_uri (file);
  return TRUE;
}

/**
 * execnet_gateway_remote_exec_file:
 * @self: a gateway
 * @file: a Python source file
 * @cancellable: (nullable): a #GCancellable for reading @file
 * @error: return location for a #GError
 *
 * Runs the whole of @file in the remote interpreter, as execnet's
 * `remote_exec(module)` does: remote tracebacks name @file (its local path)
 * and its line numbers. The code sees the returned channel as its global
 * `channel`.
 *
 * Returns: (transfer full): the channel, or %NULL if @file cannot be read,
 *   is not UTF-8 text, or the gateway is closed
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_gateway_remote_exec_file (ExecnetGateway  *self,
                                  GFile           *file,
                                  GCancellable    *cancellable,
                                  GError         **error)
{
  g_autofree char *source = NULL;
  g_autofree char *file_name = NULL;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  if (!_execnet_load_source_file (file, cancellable, &source, &file_name, error))
    return NULL;

  return execnet_gateway_remote_call_full (self, source, file_name, NULL, NULL, error);
}

/* Installs a logging handler that sends records over the output channel. */
static const char forward_logging_source[] =
  "import logging\n"
  "gateway = channel.gateway\n"
  "name, level = channel.receive()\n"
  "if not hasattr(gateway, '_output'):\n"
  "    raise RuntimeError('forwarding logging needs the execnet-glib agent; '\n"
  "                       'this gateway runs another one (drop agent=execnet from its spec)')\n"
  "class ExecnetForward(logging.Handler):\n"
  "    def emit(self, record):\n"
  "        try:\n"
  "            gateway._output(('log', {'message': self.format(record), 'name': record.name,\n"
  "                                     'levelno': record.levelno, 'levelname': record.levelname,\n"
  "                                     'pathname': record.pathname, 'lineno': record.lineno,\n"
  "                                     'funcName': record.funcName or ''}))\n"
  "        except Exception:\n"
  "            self.handleError(record)\n"
  "logger = logging.getLogger(name or None)\n"
  "logger.addHandler(ExecnetForward(level))\n"
  "if logger.level == logging.NOTSET or logger.level > level:\n"
  "    logger.setLevel(level)\n";

/* Any thread: runs forward_logging_source and sends it its arguments;
 * the channel closes cleanly once the handler is installed. */
static ExecnetChannel *
start_forward_logging (ExecnetGateway  *self,
                       const char      *logger,
                       gint             level,
                       GError         **error)
{
  g_autoptr(ExecnetChannel) channel = NULL;

  channel = execnet_gateway_remote_exec (self, forward_logging_source, error);
  if (channel == NULL)
    return NULL;
  if (!execnet_channel_send (channel, g_variant_new ("(si)", logger != NULL ? logger : "", level), error))
    {
      execnet_channel_close (channel, NULL, NULL);
      return NULL;
    }
  return g_steal_pointer (&channel);
}

/**
 * execnet_gateway_forward_logging:
 * @self: a gateway
 * @logger: (nullable): the remote logger whose records to forward, such
 *   as `"myapp"`; %NULL for the root logger (all of them)
 * @level: the least Python level forwarded (`logging.INFO` is 20)
 * @timeout: seconds to wait for the remote side to install its handler;
 *   negative waits for ever
 * @error: return location for a #GError
 *
 * Forwards the remote interpreter's `logging` records into this process's
 * structured GLib log (g_log_structured()), with the log domain
 * `execnet-remote` and the fields `EXECNET_GATEWAY` (the gateway's id),
 * `PYTHON_LOGGER`, `PYTHON_LEVEL`, `CODE_FILE`, `CODE_LINE` and
 * `CODE_FUNC`. Python's DEBUG maps to %G_LOG_LEVEL_DEBUG, INFO to
 * %G_LOG_LEVEL_INFO, WARNING and above to %G_LOG_LEVEL_WARNING.
 * Records are forwarded from when this returns on.
 *
 * ```c
 * execnet_gateway_forward_logging (gateway, NULL, 20, 10.0, &error);
 * ```
 *
 * This needs our agent: with `agent=execnet` it fails with
 * %EXECNET_ERROR_REMOTE.
 *
 * Returns: %TRUE when the handler is installed
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_forward_logging (ExecnetGateway  *self,
                                 const char      *logger,
                                 gint             level,
                                 gdouble          timeout,
                                 GError         **error)
{
  g_autoptr(ExecnetChannel) channel = NULL;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), FALSE);

  if (!_execnet_check_timeout (timeout, error))
    return FALSE;

  channel = start_forward_logging (self, logger, level, error);
  if (channel == NULL)
    return FALSE;

  return execnet_channel_wait_close (channel, timeout, error);
}

static void
on_forward_logging_installed (GObject      *source,
                              GAsyncResult *result,
                              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!execnet_channel_wait_close_finish (EXECNET_CHANNEL (source), result, &error))
    {
      /* Cancelled or timed out: the remote side may still install the
       * handler; this channel is of no more use. */
      execnet_channel_close (EXECNET_CHANNEL (source), NULL, NULL);
      _execnet_task_return_error (task, error);
      return;
    }
  _execnet_task_return_boolean (task, TRUE);
}

/**
 * execnet_gateway_forward_logging_async:
 * @self: a gateway
 * @logger: (nullable): the remote logger whose records to forward; %NULL
 *   for the root logger
 * @level: the least Python level forwarded (`logging.INFO` is 20)
 * @timeout: seconds to wait for the remote side to install its handler;
 *   negative waits for ever
 * @cancellable: (nullable): a #GCancellable; cancelling stops the wait
 *   (the call fails with %G_IO_ERROR_CANCELLED), but a handler the remote
 *   side already installed stays
 * @callback: (scope async): called when the handler is installed or the
 *   call failed
 * @user_data: data for @callback
 *
 * Forwards the remote interpreter's `logging` records into this process's
 * structured log, as [method@Execnet.Gateway.forward_logging] does, without
 * blocking. @callback runs in the thread-default main context of the
 * calling thread.
 *
 * ```c
 * execnet_gateway_forward_logging_async (gateway, "myapp", 20, 10.0, NULL,
 *                                        on_forwarding, NULL);
 * ```
 *
 * Since: 1.0
 */
void
execnet_gateway_forward_logging_async (ExecnetGateway      *self,
                                       const char          *logger,
                                       gint                 level,
                                       gdouble              timeout,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_gateway_forward_logging_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!_execnet_check_timeout (timeout, &error) ||
      (channel = start_forward_logging (self, logger, level, &error)) == NULL)
    {
      _execnet_task_return_error (task, error);
      return;
    }
  execnet_channel_wait_close_async (channel, timeout, cancellable,
                                    on_forward_logging_installed, g_steal_pointer (&task));
}

/**
 * execnet_gateway_forward_logging_finish:
 * @self: a gateway
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_gateway_forward_logging_async().
 *
 * Returns: %TRUE when the handler is installed; %FALSE with an error that
 *   says why not (%G_IO_ERROR_TIMED_OUT, %G_IO_ERROR_CANCELLED, or
 *   %EXECNET_ERROR_REMOTE, for example with `agent=execnet`)
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_forward_logging_finish (ExecnetGateway  *self,
                                        GAsyncResult    *result,
                                        GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * execnet_gateway_remote_status:
 * @self: a gateway
 * @error: return location for a #GError
 *
 * Asks the agent how it is doing, without running code.
 *
 * Returns: (transfer full): an `a{sv}` dictionary with `numchannels`,
 *   `numexecuting` and `execmodel`, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_gateway_remote_status (ExecnetGateway  *self,
                               GError         **error)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  GVariant *status;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  channel = execnet_gateway_new_channel (self);
  if (!_execnet_gateway_send_value (self, EXECNET_MESSAGE_STATUS,
                                    execnet_channel_get_id (channel), NULL, error))
    {
      execnet_channel_close (channel, NULL, NULL);
      return NULL;
    }

  status = execnet_channel_receive (channel, -1, error);
  if (status != NULL)
    execnet_channel_wait_close (channel, -1, NULL);

  return status;
}

/**
 * execnet_gateway_remote_info:
 * @self: a gateway
 * @error: return location for a #GError
 *
 * Describes the remote interpreter.
 *
 * Returns: (transfer full): an `a{sv}` dictionary with `executable`,
 *   `version_info`, `platform`, `cwd` and `pid`, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_gateway_remote_info (ExecnetGateway  *self,
                             GError         **error)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  GVariant *info;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  channel = execnet_gateway_remote_exec (self, info_source, error);
  if (channel == NULL)
    return NULL;

  info = execnet_channel_receive (channel, -1, error);
  if (info != NULL && !execnet_channel_wait_close (channel, -1, error))
    g_clear_pointer (&info, g_variant_unref);

  return info;
}

/**
 * execnet_gateway_exit:
 * @self: a gateway
 *
 * Asks the remote side to end and closes our end of the connection;
 * returns at once. The gateway leaves its group; the group's
 * [method@Execnet.Group.terminate] waits for it to end. Calling it again
 * does nothing.
 *
 * Since: 1.0
 */
void
execnet_gateway_exit (ExecnetGateway *self)
{
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetWire) wire = NULL;
  gboolean first;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  group = g_weak_ref_get (&self->group);
  if (group != NULL)
    _execnet_group_gateway_exited (group, self);

  g_mutex_lock (&self->lock);
  first = !self->exiting;
  self->exiting = TRUE;
  wire = self->wire != NULL ? _execnet_wire_ref (self->wire) : NULL;
  g_mutex_unlock (&self->lock);

  if (!first || wire == NULL)
    return;

  EXECNET_NOTE (GATEWAY, self->id, "%s: exiting", self->description);
  _execnet_wire_send (wire, EXECNET_MESSAGE_GATEWAY_TERMINATE, 0, NULL, NULL);
  _execnet_wire_finish_writing (wire);
}

/**
 * execnet_gateway_is_alive:
 * @self: a gateway
 *
 * Whether the gateway's connection is up and being read.
 *
 * Returns: whether the connection is up and being read
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_is_alive (ExecnetGateway *self)
{
  g_autoptr(ExecnetWire) wire = NULL;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), FALSE);

  wire = dup_wire (self);
  return wire != NULL && _execnet_wire_is_reading (wire);
}

/**
 * execnet_gateway_join:
 * @self: a gateway
 * @timeout: seconds to wait at most; negative waits for ever; NaN fails
 *   with %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Waits until the remote process has ended and its connection is closed.
 * Usually after [method@Execnet.Gateway.exit].
 *
 * Returns: %TRUE if it ended, %FALSE with %G_IO_ERROR_TIMED_OUT otherwise
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_join (ExecnetGateway  *self,
                      gdouble          timeout,
                      GError         **error)
{
  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), FALSE);

  if (!_execnet_check_timeout (timeout, error))
    return FALSE;

  if (_execnet_gateway_wait_ended (self, _execnet_deadline_from_timeout (timeout)))
    return TRUE;

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
               "%s did not end within %g seconds", self->description, timeout);
  return FALSE;
}

static void
on_join_ended (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetGateway *self = g_task_get_source_object (task);
  ExecnetDeadline *deadline = g_task_get_task_data (task);
  GError *error = NULL;

  if (_execnet_gateway_wait_ended_finish (self, result, &error))
    _execnet_task_return_boolean (task, TRUE);
  else if (_execnet_deadline_timed_out (deadline) &&
           !g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      g_error_free (error);
      _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                      "%s did not end in time", self->description);
    }
  else
    _execnet_task_return_error (task, error);
}

/**
 * execnet_gateway_join_async:
 * @self: a gateway
 * @timeout: seconds to wait at most; negative waits for ever
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the gateway ended, the timeout
 *   passed or @cancellable was cancelled
 * @user_data: data for @callback
 *
 * Waits asynchronously until the remote process has ended and its
 * connection is closed, as [method@Execnet.Gateway.join] does. @callback
 * runs in the thread-default main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_gateway_join_async (ExecnetGateway      *self,
                            gdouble              timeout,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ExecnetDeadline *deadline;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_gateway_join_async);
  if (!_execnet_check_timeout (timeout, &error))
    {
      _execnet_task_return_error (task, error);
      return;
    }

  deadline = _execnet_deadline_new (timeout, cancellable);
  g_task_set_task_data (task, deadline, (GDestroyNotify) _execnet_deadline_free);
  _execnet_gateway_wait_ended_async (self, _execnet_deadline_get_cancellable (deadline),
                                     on_join_ended, g_steal_pointer (&task));
}

/**
 * execnet_gateway_join_finish:
 * @self: a gateway
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_gateway_join_async().
 *
 * Returns: %TRUE if it ended, %FALSE with %G_IO_ERROR_TIMED_OUT or
 *   %G_IO_ERROR_CANCELLED otherwise
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_join_finish (ExecnetGateway  *self,
                             GAsyncResult    *result,
                             GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* remote_status_async and remote_info_async: one item on a channel, then
 * its clean close. */
static void
on_reply_closed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!execnet_channel_wait_close_finish (EXECNET_CHANNEL (source), result, &error))
    _execnet_task_return_error (task, error);
  else
    _execnet_task_return_pointer (task, g_variant_ref (g_task_get_task_data (task)),
                           (GDestroyNotify) g_variant_unref);
}

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetChannel *channel = EXECNET_CHANNEL (source);
  GCancellable *cancellable;
  GVariant *reply;
  GError *error = NULL;

  reply = execnet_channel_receive_finish (channel, result, &error);
  if (reply == NULL)
    {
      execnet_channel_close (channel, NULL, NULL);
      _execnet_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, reply, (GDestroyNotify) g_variant_unref);
  cancellable = g_task_get_cancellable (task);
  execnet_channel_wait_close_async (channel, -1, cancellable, on_reply_closed, g_steal_pointer (&task));
}

/* Any thread: @task (transfer full) completes with the one item that
 * arrives on @channel (transfer none, nullable: @error says why not). */
static void
receive_reply (GTask          *task,
               ExecnetChannel *channel,
               GError         *error)
{
  if (channel == NULL)
    {
      _execnet_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  execnet_channel_receive_async (channel, g_task_get_cancellable (task), on_reply, task);
}

/**
 * execnet_gateway_remote_status_async:
 * @self: a gateway
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the status arrived or failed
 * @user_data: data for @callback
 *
 * Asks the agent how it is doing, as
 * [method@Execnet.Gateway.remote_status] does, without blocking.
 * @callback runs in the thread-default main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_gateway_remote_status_async (ExecnetGateway      *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  GTask *task;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_gateway_remote_status_async);

  channel = execnet_gateway_new_channel (self);
  if (!_execnet_gateway_send_value (self, EXECNET_MESSAGE_STATUS,
                                    execnet_channel_get_id (channel), NULL, &error))
    {
      execnet_channel_close (channel, NULL, NULL);
      g_clear_object (&channel);
    }
  receive_reply (task, channel, error);
}

/**
 * execnet_gateway_remote_status_finish:
 * @self: a gateway
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_gateway_remote_status_async().
 *
 * Returns: (transfer full): an `a{sv}` dictionary with `numchannels`,
 *   `numexecuting` and `execmodel`, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_gateway_remote_status_finish (ExecnetGateway  *self,
                                      GAsyncResult    *result,
                                      GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * execnet_gateway_remote_info_async:
 * @self: a gateway
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the description arrived or failed
 * @user_data: data for @callback
 *
 * Describes the remote interpreter, as [method@Execnet.Gateway.remote_info]
 * does, without blocking. @callback runs in the thread-default main
 * context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_gateway_remote_info_async (ExecnetGateway      *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  GTask *task;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_gateway_remote_info_async);

  channel = execnet_gateway_remote_exec (self, info_source, &error);
  receive_reply (task, channel, error);
}

/**
 * execnet_gateway_remote_info_finish:
 * @self: a gateway
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_gateway_remote_info_async().
 *
 * Returns: (transfer full): an `a{sv}` dictionary with `executable`,
 *   `version_info`, `platform`, `cwd` and `pid`, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_gateway_remote_info_finish (ExecnetGateway  *self,
                                    GAsyncResult    *result,
                                    GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * execnet_gateway_to_string:
 * @self: a gateway
 *
 * Describes the gateway as execnet does:
 * `<PopenGateway id='gw0' receive-live, 0 active channels>`.
 *
 * Returns: (transfer full): the description
 *
 * Since: 1.0
 */
char *
execnet_gateway_to_string (ExecnetGateway *self)
{
  guint n_channels;
  gboolean alive;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), NULL);

  alive = execnet_gateway_is_alive (self);
  g_mutex_lock (&self->lock);
  n_channels = g_hash_table_size (self->channels);
  g_mutex_unlock (&self->lock);

  return g_strdup_printf ("<%s id='%s' %s, %u active channels>",
                          self->type_name, self->id,
                          alive ? "receive-live" : "not-receiving",
                          n_channels);
}

/**
 * execnet_gateway_set_wire_observer:
 * @self: a gateway
 * @observer: (nullable) (scope notified) (closure user_data): called for
 *   every message sent or received, or %NULL to stop observing
 * @user_data: data for @observer
 * @notify: (nullable): frees @user_data when the observer is replaced or
 *   the gateway is finalized
 *
 * Watches the gateway's messages as they cross the wire, for debugging
 * tools such as `execnet-tool trace`. See [callback@Execnet.WireObserver]
 * for the threads it runs in.
 *
 * Since: 1.0
 */
void
execnet_gateway_set_wire_observer (ExecnetGateway      *self,
                                   ExecnetWireObserver  func,
                                   gpointer             user_data,
                                   GDestroyNotify       notify)
{
  ExecnetWireTap *tap = NULL;
  ExecnetWireTap *old;

  g_return_if_fail (EXECNET_IS_GATEWAY (self));

  if (func != NULL)
    tap = _execnet_wire_tap_new (self, func, user_data, notify);

  g_mutex_lock (&self->lock);
  old = self->tap;
  self->tap = tap;
  if (self->wire != NULL)
    _execnet_wire_set_tap (self->wire, tap);
  g_mutex_unlock (&self->lock);

  /* Its notify may run user code: never under the lock. */
  _execnet_wire_tap_unref (old);
}

/**
 * execnet_gateway_get_startup_times:
 * @self: a gateway
 * @connect_us: (out) (optional): microseconds from the start until the
 *   transport had a connection to an interpreter
 * @bootstrap_us: (out) (optional): microseconds from then until the agent
 *   acknowledged the bootstrap
 *
 * How the gateway's start-up was spent, for tools such as
 * `execnet-tool probe`.
 *
 * Returns: %FALSE if the gateway did not get that far
 *
 * Since: 1.0
 */
gboolean
execnet_gateway_get_startup_times (ExecnetGateway *self,
                                   gint64         *connect_us,
                                   gint64         *bootstrap_us)
{
  gboolean complete;

  g_return_val_if_fail (EXECNET_IS_GATEWAY (self), FALSE);

  g_mutex_lock (&self->lock);
  complete = self->acknowledged_time != 0;
  if (connect_us != NULL)
    *connect_us = complete ? self->connected_time - self->start_time : 0;
  if (bootstrap_us != NULL)
    *bootstrap_us = complete ? self->acknowledged_time - self->connected_time : 0;
  g_mutex_unlock (&self->lock);

  return complete;
}
