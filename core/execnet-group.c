/* execnet-group.c: managing many gateways
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet-error.h>

#include "execnet-async-private.h"
#include "execnet-emitter-private.h"
#include "execnet-error-private.h"
#include "execnet-gateway-private.h"
#include "execnet-group-private.h"
#include "execnet-inbox-private.h"
#include "execnet-util-private.h"

/**
 * ExecnetGroup:
 *
 * A set of gateways: it makes them from specs, names them, and terminates
 * them together.
 *
 * Gateways get the id given by their spec's `id=` key, or the next free one
 * of `gw0`, `gw1`, ... A group is a [iface@Gio.ListModel] of its gateways,
 * in the order their starts were asked for, as in execnet: gateways started
 * together, by [method@Execnet.Group.make_gateways_async] or otherwise, are
 * listed in the order of their specs, whichever becomes ready first; each
 * joins the list at its place with an items-changed that adds it there.
 *
 * Threads: every method is thread-safe. The group's signals,
 * [signal@Gio.ListModel::items-changed] and `notify::default-spec`, are
 * emitted in the main context that was thread-default when the group was
 * made, never in the I/O thread nor in another thread that changed the
 * group; in the group's own thread they are emitted before the call that
 * caused them returns. The [iface@Gio.ListModel] methods show the members
 * as of the last items-changed, so a list view bound to the group always
 * sees a consistent list; [method@Execnet.Group.get_size],
 * [method@Execnet.Group.get_gateway] and [method@Execnet.Group.lookup] see
 * the members as they are now.
 *
 * [method@Execnet.Group.terminate] asks every member to exit at once, waits
 * for all of them together up to a timeout, then kills and reaps whatever
 * is left, so it never hangs and never leaves a process behind.
 *
 * ## Gateways through gateways
 *
 * A spec with `via=ID` has the interpreter started by the agent of the
 * group's gateway `ID`, on that gateway's host, and its frames relayed
 * through that gateway's connection: `popen//via=gw0` runs `python3`
 * beside gw0, `ssh=node7//via=gw0` runs the ssh client there. The relay
 * can itself be a `via=` gateway, to any depth:
 *
 * ```c
 * execnet_group_make_gateway (group, "ssh=gateway.example.org//id=front", &error);
 * execnet_group_make_gateway (group, "ssh=node7//via=front//id=node7", &error);
 * execnet_group_make_gateway (group, "popen//python=python3.12//via=node7", &error);
 * ```
 *
 * `via=` must name a gateway of the same group (anything else is
 * %EXECNET_ERROR_INVALID_SPEC); terminate ends such gateways before the
 * ones they are relayed through. It works with `agent=execnet` on the
 * relay too: the relay is plain Python run with remote_exec.
 *
 * All methods are thread-safe; several threads may make gateways at once,
 * and [ctor@Execnet.Group.new_with_specs] starts all its gateways
 * concurrently.
 *
 * Since: 1.0
 */

/* The list model and threads. Members change in whatever thread makes a
 * gateway or sees one exit, but a GListModel's items-changed must agree
 * with what get_item() returns at the moment it is emitted, and a
 * GtkListView must only hear it in its own thread. So the group keeps two
 * lists: the members, always current, which every group method reads; and
 * the model, the members as of the last items-changed, which only the
 * GListModel methods read. Each change to the members is queued with the
 * group's emitter and applied to the model, then emitted, in the context
 * the group was made in; in the thread that made the group it happens
 * before the change returns. While nothing listens and nothing is queued,
 * the model follows the members at once. */
typedef struct
{
  guint position;
  guint removed;
  GPtrArray *added;            /* (element-type ExecnetGateway) (owned) */
} Change;

struct _ExecnetGroup
{
  GObject parent_instance;

  /* Written once in init, never again: read without the lock. */
  ExecnetEmitter *emitter;     /* (owned) signals, in the context the group was made in */

  GMutex lock;                 /* guards everything below */
  GPtrArray *gateways;         /* (element-type ExecnetGateway) (owned) members */
  GPtrArray *model;            /* (element-type ExecnetGateway) (owned) as the list model shows them */
  guint pending_changes;       /* changes queued and not yet applied to the model */
  GPtrArray *to_join;          /* (element-type ExecnetGateway) (owned) exited, not yet joined */
  GHashTable *reserved;        /* (element-type utf8) (owned) ids of gateways being made */
  guint next_id;
  guint64 next_start_order;    /* members are kept sorted by their start order */
  /* Interned (g_intern_string) and so never freed: the pointer that
   * execnet_group_get_default_spec() returned stays valid whatever another
   * thread sets later. A program sets few distinct default specs. */
  const char *default_spec;
};

enum {
  PROP_0,
  PROP_DEFAULT_SPEC,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* How long to wait for killed processes to be reaped before giving up. */
#define REAP_TIMEOUT 5.0

static void execnet_group_list_model_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetGroup, execnet_group, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, execnet_group_list_model_init))

static GType
execnet_group_get_item_type (GListModel *model)
{
  return EXECNET_TYPE_GATEWAY;
}

static guint
execnet_group_get_n_items (GListModel *model)
{
  ExecnetGroup *self = EXECNET_GROUP (model);
  guint n_items;

  g_mutex_lock (&self->lock);
  n_items = self->model->len;
  g_mutex_unlock (&self->lock);

  return n_items;
}

static gpointer
execnet_group_get_item (GListModel *model,
                        guint       position)
{
  ExecnetGroup *self = EXECNET_GROUP (model);
  gpointer item = NULL;

  g_mutex_lock (&self->lock);
  if (position < self->model->len)
    item = g_object_ref (g_ptr_array_index (self->model, position));
  g_mutex_unlock (&self->lock);

  return item;
}

/* Called with the lock held. */
static void
apply_change_unlocked (ExecnetGroup *self,
                       Change       *change)
{
  if (change->removed > 0)
    g_ptr_array_remove_range (self->model, change->position, change->removed);
  for (guint i = 0; change->added != NULL && i < change->added->len; i++)
    g_ptr_array_insert (self->model, change->position + i,
                        g_object_ref (g_ptr_array_index (change->added, i)));
}

static void
change_free (gpointer data)
{
  Change *change = data;

  g_clear_pointer (&change->added, g_ptr_array_unref);
  g_free (change);
}

/* The group's context: the model catches up with one change and says so. */
static void
emit_change (GObject  *object,
             gpointer  data)
{
  ExecnetGroup *self = EXECNET_GROUP (object);
  Change *change = data;

  g_mutex_lock (&self->lock);
  apply_change_unlocked (self, change);
  self->pending_changes--;
  g_mutex_unlock (&self->lock);

  g_list_model_items_changed (G_LIST_MODEL (self), change->position, change->removed,
                              change->added != NULL ? change->added->len : 0);
}

/* Called with the lock held, right after the members changed:
 * @removed members at @position were replaced by @added (transfer full,
 * nullable). The caller calls flush_if_home() after unlocking. */
static void
changed_unlocked (ExecnetGroup *self,
                  guint         position,
                  guint         removed,
                  GPtrArray    *added)
{
  Change *change = g_new0 (Change, 1);

  change->position = position;
  change->removed = removed;
  change->added = added;

  if (self->pending_changes == 0 &&
      !g_signal_has_handler_pending (self, g_signal_lookup ("items-changed", G_TYPE_LIST_MODEL), 0, TRUE))
    {
      apply_change_unlocked (self, change);
      change_free (change);
      return;
    }

  self->pending_changes++;
  _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_change, change, change_free);
}

/* Any thread: in the group's own thread, emits what is queued now. */
static void
flush_if_home (ExecnetGroup *self)
{
  if (_execnet_emitter_is_home (self->emitter))
    _execnet_emitter_flush (self->emitter);
}

static GPtrArray *
gateways_of (ExecnetGateway *gateway)
{
  GPtrArray *added = g_ptr_array_new_with_free_func (g_object_unref);

  g_ptr_array_add (added, g_object_ref (gateway));
  return added;
}

static void
execnet_group_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = execnet_group_get_item_type;
  iface->get_n_items = execnet_group_get_n_items;
  iface->get_item = execnet_group_get_item;
}

static void
execnet_group_dispose (GObject *object)
{
  ExecnetGroup *self = EXECNET_GROUP (object);
  g_autoptr(GPtrArray) members = NULL;

  /* A group that goes away without terminate() still makes its members
   * exit; their processes end on their own when they read end-of-file. */
  g_mutex_lock (&self->lock);
  members = g_steal_pointer (&self->gateways);
  self->gateways = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_set_size (self->model, 0);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; members != NULL && i < members->len; i++)
    {
      ExecnetGateway *gateway = g_ptr_array_index (members, i);

      _execnet_gateway_clear_group (gateway);
      execnet_gateway_exit (gateway);
    }

  G_OBJECT_CLASS (execnet_group_parent_class)->dispose (object);
}

static void
execnet_group_finalize (GObject *object)
{
  ExecnetGroup *self = EXECNET_GROUP (object);

  g_ptr_array_unref (self->gateways);
  g_ptr_array_unref (self->model);
  g_ptr_array_unref (self->to_join);
  _execnet_emitter_free (self->emitter);
  g_hash_table_unref (self->reserved);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (execnet_group_parent_class)->finalize (object);
}

static void
execnet_group_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  ExecnetGroup *self = EXECNET_GROUP (object);

  switch (prop_id)
    {
    case PROP_DEFAULT_SPEC:
      g_mutex_lock (&self->lock);
      g_value_set_string (value, self->default_spec);
      g_mutex_unlock (&self->lock);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_group_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  ExecnetGroup *self = EXECNET_GROUP (object);

  switch (prop_id)
    {
    case PROP_DEFAULT_SPEC:
      execnet_group_set_default_spec (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_group_class_init (ExecnetGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = execnet_group_dispose;
  object_class->finalize = execnet_group_finalize;
  object_class->get_property = execnet_group_get_property;
  object_class->set_property = execnet_group_set_property;

  /**
   * ExecnetGroup:default-spec:
   *
   * The spec used by [method@Execnet.Group.make_gateway] when it is given
   * none; `popen` unless set.
   *
   * Since: 1.0
   */
  properties[PROP_DEFAULT_SPEC] =
    g_param_spec_string ("default-spec", NULL, NULL, "popen",
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
execnet_group_init (ExecnetGroup *self)
{
  self->emitter = _execnet_emitter_new ();
  g_mutex_init (&self->lock);
  self->gateways = g_ptr_array_new_with_free_func (g_object_unref);
  self->model = g_ptr_array_new_with_free_func (g_object_unref);
  self->to_join = g_ptr_array_new_with_free_func (g_object_unref);
  self->reserved = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->default_spec = g_intern_static_string ("popen");
}

/**
 * execnet_group_new:
 *
 * Makes an empty group.
 *
 * Returns: (transfer full): the group
 *
 * Since: 1.0
 */
ExecnetGroup *
execnet_group_new (void)
{
  return g_object_new (EXECNET_TYPE_GROUP, NULL);
}

/* Called with the lock held. */
static gboolean
id_in_use_unlocked (ExecnetGroup *self,
                    const char   *id)
{
  if (g_hash_table_contains (self->reserved, id))
    return TRUE;
  for (guint i = 0; i < self->gateways->len; i++)
    if (g_str_equal (execnet_gateway_get_id (g_ptr_array_index (self->gateways, i)), id))
      return TRUE;
  return FALSE;
}

/* Called with the lock held. */
static void
allocate_id_unlocked (ExecnetGroup *self,
                      ExecnetXSpec *xspec)
{
  g_autofree char *id = NULL;

  if (execnet_xspec_get_id (xspec) != NULL)
    return;

  do
    {
      g_free (id);
      id = g_strdup_printf ("gw%u", self->next_id++);
    }
  while (id_in_use_unlocked (self, id));

  execnet_xspec_set_id (xspec, id);
}

/**
 * execnet_group_allocate_id:
 * @self: a group
 * @xspec: a spec
 *
 * Gives @xspec the next automatic id (`gw0`, `gw1`, ...) unless it has an
 * id already, so that the id is known before the gateway is made.
 *
 * Since: 1.0
 */
void
execnet_group_allocate_id (ExecnetGroup *self,
                           ExecnetXSpec *xspec)
{
  g_return_if_fail (EXECNET_IS_GROUP (self));
  g_return_if_fail (xspec != NULL);

  g_mutex_lock (&self->lock);
  allocate_id_unlocked (self, xspec);
  g_mutex_unlock (&self->lock);
}

typedef struct
{
  GTask *task;                 /* (owned) */
  GError *error;               /* (owned) why the start failed */
  ExecnetDeadline *deadline;   /* (owned) for the reaping */
} FailedStart;

static void
on_failed_start_reaped (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  FailedStart *failed = user_data;

  _execnet_gateway_wait_ended_finish (EXECNET_GATEWAY (source), result, NULL);
  _execnet_task_return_error (failed->task, failed->error);
  g_object_unref (failed->task);
  _execnet_deadline_free (failed->deadline);
  g_free (failed);
}

/* A start failed, or was cancelled, possibly after the transport had
 * started a process: kill it and wait until it is reaped before @task
 * (transfer full) fails with @error (transfer full), so that nothing is
 * left behind. */
static void
fail_start (GTask          *task,
            ExecnetGateway *gateway,
            GError         *error)
{
  FailedStart *failed = g_new0 (FailedStart, 1);

  failed->task = task;
  failed->error = error;
  failed->deadline = _execnet_deadline_new (REAP_TIMEOUT, NULL);
  _execnet_gateway_kill (gateway);
  _execnet_gateway_wait_ended_async (gateway, _execnet_deadline_get_cancellable (failed->deadline),
                                     on_failed_start_reaped, failed);
}

static void
on_gateway_started (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) owned = user_data;
  GTask *task;
  ExecnetGroup *self = g_task_get_source_object (owned);
  ExecnetGateway *gateway = EXECNET_GATEWAY (source);
  GError *error = NULL;
  gboolean ok;
  guint position = 0;

  ok = _execnet_gateway_start_finish (gateway, result, &error);
  task = g_steal_pointer (&owned);

  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->reserved, execnet_gateway_get_id (gateway));
  if (ok)
    {
      /* At its place among the members: after every one started before it. */
      position = self->gateways->len;
      while (position > 0 &&
             _execnet_gateway_get_start_order (g_ptr_array_index (self->gateways, position - 1)) >
             _execnet_gateway_get_start_order (gateway))
        position--;
      g_ptr_array_insert (self->gateways, position, g_object_ref (gateway));
      changed_unlocked (self, position, 0, gateways_of (gateway));
    }
  g_mutex_unlock (&self->lock);

  if (!ok)
    {
      fail_start (task, gateway, error);
      return;
    }

  flush_if_home (self);
  _execnet_task_return_pointer (task, g_object_ref (gateway), g_object_unref);
  g_object_unref (task);
}

/**
 * execnet_group_make_gateway_for_xspec_async:
 * @self: a group
 * @xspec: the spec of the gateway; it gets the gateway's id if it had none
 * @cancellable: (nullable): a #GCancellable; cancelling it kills and reaps
 *   whatever the start had started
 * @callback: (scope async): called when the gateway is ready or failed
 * @user_data: data for @callback
 *
 * Makes a gateway asynchronously, as
 * [method@Execnet.Group.make_gateway_for_xspec] does. @callback runs in
 * the thread-default main context of the calling thread. Many gateways can
 * start at once this way.
 *
 * Since: 1.0
 */
void
execnet_group_make_gateway_for_xspec_async (ExecnetGroup        *self,
                                            ExecnetXSpec        *xspec,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(ExecnetGateway) gateway = NULL;
  guint64 start_order;
  const char *id;

  g_return_if_fail (EXECNET_IS_GROUP (self));
  g_return_if_fail (xspec != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_group_make_gateway_for_xspec_async);

  g_mutex_lock (&self->lock);
  allocate_id_unlocked (self, xspec);
  id = execnet_xspec_get_id (xspec);
  if (id_in_use_unlocked (self, id))
    {
      g_mutex_unlock (&self->lock);
      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_DUPLICATE_ID,
                                      "the group has a gateway with id “%s” already; "
                                      "choose another id= or leave it out for an automatic one", id);
      return;
    }
  g_hash_table_add (self->reserved, g_strdup (id));
  start_order = self->next_start_order++;
  g_mutex_unlock (&self->lock);

  gateway = _execnet_gateway_new (xspec, self);
  _execnet_gateway_set_start_order (gateway, start_order);
  if (execnet_xspec_get (xspec, "via") != NULL)
    {
      const char *via_id = execnet_xspec_get (xspec, "via");
      ExecnetGateway *via = execnet_group_lookup (self, via_id);

      if (via == NULL)
        {
          g_mutex_lock (&self->lock);
          g_hash_table_remove (self->reserved, id);
          g_mutex_unlock (&self->lock);
          _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                                          "invalid spec “%s”: via=%s names no gateway of this group; "
                                          "via= takes the id of a running gateway of the same group",
                                          execnet_xspec_to_string (xspec), via_id);
          return;
        }
      _execnet_gateway_set_via (gateway, via);
    }
  _execnet_gateway_start_async (gateway, cancellable, on_gateway_started, g_steal_pointer (&task));
}

/* Every error of making gateways passes here, whichever transport made
 * it; it may quote the remote's output or the spec, so it is escaped and
 * bounded once, here. */
static gpointer
propagate_made (GAsyncResult  *result,
                GError       **error)
{
  GError *local_error = NULL;
  gpointer made = g_task_propagate_pointer (G_TASK (result), &local_error);

  _execnet_error_escape_message (local_error, EXECNET_START_ERROR_MAX);
  if (local_error != NULL)
    g_propagate_error (error, local_error);
  return made;
}

/**
 * execnet_group_make_gateway_for_xspec_finish:
 * @self: a group
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_group_make_gateway_for_xspec_async().
 *
 * Returns: (transfer none): the gateway, owned by the group, or %NULL on
 *   error
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_make_gateway_for_xspec_finish (ExecnetGroup  *self,
                                             GAsyncResult  *result,
                                             GError       **error)
{
  g_autoptr(ExecnetGateway) gateway = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  /* The group holds it for as long as it is a member. */
  gateway = propagate_made (result, error);
  return gateway;
}

/* Any thread: @spec parsed; no spec, or an empty one, is the default spec,
 * as in execnet. */
static ExecnetXSpec *
parse_spec (ExecnetGroup  *self,
            const char    *spec,
            GError       **error)
{
  if (spec == NULL || *spec == '\0')
    spec = execnet_group_get_default_spec (self);
  return execnet_xspec_new (spec, error);
}

/* The most gateways one N*SPEC makes: a guard against a typing mistake
 * such as 10000*popen, not a limit of the library. */
#define MAX_SPEC_COUNT 1024

/* Any thread: @specs parsed into XSpecs in order, each `N*SPEC` (as in
 * pytest-xdist's `--tx 4*popen`) expanded into N separate ones. */
static GPtrArray *
parse_specs (ExecnetGroup        *self,
             const char * const  *specs,
             GError             **error)
{
  g_autoptr(GPtrArray) xspecs = g_ptr_array_new_with_free_func ((GDestroyNotify) execnet_xspec_unref);

  for (guint i = 0; specs[i] != NULL; i++)
    {
      const char *spec = specs[i];
      const char *star = spec;
      guint64 count = 1;

      while (g_ascii_isdigit (*star))
        star++;
      if (star > spec && *star == '*')
        {
          g_autofree char *digits = g_strndup (spec, star - spec);

          if (!g_ascii_string_to_unsigned (digits, 10, 1, MAX_SPEC_COUNT, &count, NULL) ||
              star[1] == '\0')
            {
              g_autofree char *text = execnet_error_escape_text (specs[i], -1, 512);

              g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                           "Invalid gateway spec “%s”: write N*SPEC, with N from 1 to %d",
                           text, MAX_SPEC_COUNT);
              return NULL;
            }
          spec = star + 1;
        }

      for (guint64 n = 0; n < count; n++)
        {
          ExecnetXSpec *xspec = parse_spec (self, spec, error);

          if (xspec == NULL)
            return NULL;
          if (count > 1 && execnet_xspec_get_id (xspec) != NULL)
            {
              g_autofree char *text = execnet_error_escape_text (specs[i], -1, 512);

              g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                           "Invalid gateway spec “%s”: %" G_GUINT64_FORMAT " gateways cannot share "
                           "the id “%s”; leave id= out to have the group number them",
                           text, count, execnet_xspec_get_id (xspec));
              execnet_xspec_unref (xspec);
              return NULL;
            }
          g_ptr_array_add (xspecs, xspec);
        }
    }

  return g_steal_pointer (&xspecs);
}

static void
on_made_from_spec (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway_for_xspec_finish (EXECNET_GROUP (source), result, &error);
  if (gateway == NULL)
    _execnet_task_return_error (task, error);
  else
    _execnet_task_return_pointer (task, g_object_ref (gateway), g_object_unref);
}

/**
 * execnet_group_make_gateway_async:
 * @self: a group
 * @spec: (nullable): the spec text, or %NULL (or the empty string) for the
 *   group's default spec
 * @cancellable: (nullable): a #GCancellable; cancelling it kills and reaps
 *   whatever the start had started
 * @callback: (scope async): called when the gateway is ready or failed
 * @user_data: data for @callback
 *
 * Makes a gateway asynchronously, as [method@Execnet.Group.make_gateway]
 * does. @callback runs in the thread-default main context of the calling
 * thread.
 *
 * Since: 1.0
 */
void
execnet_group_make_gateway_async (ExecnetGroup        *self,
                                  const char          *spec,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_GROUP (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_group_make_gateway_async);

  xspec = parse_spec (self, spec, &error);
  if (xspec == NULL)
    {
      _execnet_task_return_error (task, error);
      return;
    }
  execnet_group_make_gateway_for_xspec_async (self, xspec, cancellable, on_made_from_spec,
                                              g_steal_pointer (&task));
}

/**
 * execnet_group_make_gateway_finish:
 * @self: a group
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_group_make_gateway_async().
 *
 * Returns: (transfer none): the gateway, owned by the group, or %NULL on
 *   error
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_make_gateway_finish (ExecnetGroup  *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_autoptr(ExecnetGateway) gateway = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  gateway = propagate_made (result, error);
  return gateway;
}

typedef struct
{
  ExecnetGroup *group;
  ExecnetXSpec *xspec;
} MakeData;

static void
start_make (gpointer            data,
            GAsyncReadyCallback callback,
            gpointer            user_data)
{
  MakeData *make = data;

  execnet_group_make_gateway_for_xspec_async (make->group, make->xspec, NULL, callback, user_data);
}

/**
 * execnet_group_make_gateway_for_xspec:
 * @self: a group
 * @xspec: the spec of the gateway
 * @error: return location for a #GError
 *
 * Makes a gateway and waits until it is ready. @xspec gets the gateway's id
 * if it had none.
 *
 * Returns: (transfer none): the gateway, owned by the group, or %NULL on error
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_make_gateway_for_xspec (ExecnetGroup  *self,
                                      ExecnetXSpec  *xspec,
                                      GError       **error)
{
  MakeData make = { self, xspec };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);
  g_return_val_if_fail (xspec != NULL, NULL);

  result = _execnet_run_sync (start_make, &make);
  return execnet_group_make_gateway_for_xspec_finish (self, result, error);
}

/**
 * execnet_group_make_gateway:
 * @self: a group
 * @spec: (nullable): the spec text, or %NULL (or the empty string) for
 *   the group's default spec
 * @error: return location for a #GError
 *
 * Makes a gateway from a spec such as `popen//id=w1` and waits until it is
 * ready to run code. Without a spec the group's
 * [property@Execnet.Group:default-spec] is used, as execnet does.
 *
 * Returns: (transfer none): the gateway, owned by the group, or %NULL on error
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_make_gateway (ExecnetGroup  *self,
                            const char    *spec,
                            GError       **error)
{
  g_autoptr(ExecnetXSpec) xspec = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);

  xspec = parse_spec (self, spec, error);
  if (xspec == NULL)
    return NULL;

  return execnet_group_make_gateway_for_xspec (self, xspec, error);
}

static void terminate_gateways_async (ExecnetGroup        *self,
                                      GPtrArray           *gateways,
                                      gdouble              timeout,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);

/* make_gateways_async: all start at once; the result lists them in the
 * order of the specs. If one fails, the others are stopped: those that
 * started exit (and are killed if they do not end in time), those still
 * starting are cancelled, and the first error is returned once all of
 * them have ended. */
typedef struct
{
  GPtrArray *xspecs;           /* (element-type ExecnetXSpec) (owned) */
  GPtrArray *gateways;         /* (element-type ExecnetGateway) (owned) (nullable items) by spec */
  GCancellable *cancellable;   /* (owned) cancelled at the first failure */
  gulong cancelled_id;         /* links it to the caller's cancellable */
  guint pending;
  GError *error;               /* (owned) (nullable) the first failure */
} Many;

static void
many_free (gpointer data)
{
  Many *many = data;

  g_clear_pointer (&many->xspecs, g_ptr_array_unref);
  for (guint i = 0; i < many->gateways->len; i++)
    g_clear_object (&g_ptr_array_index (many->gateways, i));
  g_ptr_array_unref (many->gateways);
  g_clear_object (&many->cancellable);
  g_clear_error (&many->error);
  g_free (many);
}

/* (element-type ExecnetGateway) (transfer full) */
static GPtrArray *
copy_gateways (GPtrArray *gateways)
{
  GPtrArray *copy = g_ptr_array_new_full (gateways->len, g_object_unref);

  for (guint i = 0; i < gateways->len; i++)
    g_ptr_array_add (copy, g_object_ref (g_ptr_array_index (gateways, i)));
  return copy;
}

static void
on_many_cancelled (GCancellable *cancellable,
                   gpointer      data)
{
  /* Any thread */
  g_cancellable_cancel (data);
}

static void
on_many_terminated (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Many *many = g_task_get_task_data (task);

  _execnet_task_return_error (task, g_steal_pointer (&many->error));
}

static void
on_one_made (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetGroup *self = g_task_get_source_object (task);
  Many *many = g_task_get_task_data (task);
  ExecnetGateway *gateway;
  GError *error = NULL;

  gateway = execnet_group_make_gateway_for_xspec_finish (self, result, &error);
  if (gateway != NULL)
    {
      for (guint i = 0; i < many->xspecs->len; i++)
        if (execnet_gateway_get_xspec (gateway) == g_ptr_array_index (many->xspecs, i))
          g_ptr_array_index (many->gateways, i) = g_object_ref (gateway);
    }
  else if (many->error == NULL)
    {
      many->error = error;
      g_cancellable_cancel (many->cancellable);
    }
  else
    g_error_free (error);

  if (--many->pending > 0)
    return;

  GCancellable *parent = g_task_get_cancellable (task);

  if (parent != NULL)
    g_cancellable_disconnect (parent, many->cancelled_id);

  if (many->error == NULL)
    {
      _execnet_task_return_pointer (task, copy_gateways (many->gateways), (GDestroyNotify) g_ptr_array_unref);
      return;
    }

  /* Stop the ones that started. */
  {
    g_autoptr(GPtrArray) started = g_ptr_array_new_with_free_func (g_object_unref);

    for (guint i = 0; i < many->gateways->len; i++)
      if (g_ptr_array_index (many->gateways, i) != NULL)
        g_ptr_array_add (started, g_object_ref (g_ptr_array_index (many->gateways, i)));
    terminate_gateways_async (self, started, REAP_TIMEOUT, on_many_terminated, g_steal_pointer (&task));
  }
}

/**
 * execnet_group_make_gateways_async:
 * @self: a group
 * @specs: (array zero-terminated=1): spec texts
 * @cancellable: (nullable): a #GCancellable; cancelling it stops every
 *   start, and kills and reaps what they had started
 * @callback: (scope async): called when all gateways are ready, or one
 *   failed and the others were stopped
 * @user_data: data for @callback
 *
 * Makes one gateway per spec, all started at once. A spec written
 * `N*SPEC`, as pytest-xdist's `--tx 4*popen`, makes N gateways from SPEC;
 * ids (`gw0`, `gw1`, ...) are given in the order of the specs. Each joins
 * the group as it becomes ready, at the place of its spec, so that the
 * group lists them in the order of the specs too. If one fails, those that
 * started are terminated and the first error is returned. @callback runs in the thread-default main
 * context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_group_make_gateways_async (ExecnetGroup        *self,
                                   const char * const  *specs,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Many *many;

  g_return_if_fail (EXECNET_IS_GROUP (self));
  g_return_if_fail (specs != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_group_make_gateways_async);
  many = g_new0 (Many, 1);
  many->gateways = g_ptr_array_new ();
  many->cancellable = g_cancellable_new ();
  g_task_set_task_data (task, many, many_free);

  many->xspecs = parse_specs (self, specs, &error);
  if (many->xspecs == NULL)
    {
      _execnet_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_ptr_array_set_size (many->gateways, many->xspecs->len);

  if (many->xspecs->len == 0)
    {
      _execnet_task_return_pointer (task, copy_gateways (many->gateways), (GDestroyNotify) g_ptr_array_unref);
      return;
    }

  if (cancellable != NULL)
    many->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (on_many_cancelled),
                                                many->cancellable, NULL);
  many->pending = many->xspecs->len;
  for (guint i = 0; i < many->xspecs->len; i++)
    execnet_group_make_gateway_for_xspec_async (self, g_ptr_array_index (many->xspecs, i),
                                                many->cancellable, on_one_made, g_object_ref (task));
}

/**
 * execnet_group_make_gateways_finish:
 * @self: a group
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_group_make_gateways_async().
 *
 * Returns: (transfer container) (element-type ExecnetGateway): the new
 *   gateways, owned by the group, in the order of the specs; %NULL on
 *   error
 *
 * Since: 1.0
 */
GPtrArray *
execnet_group_make_gateways_finish (ExecnetGroup  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_autoptr(GPtrArray) gateways = NULL;
  GPtrArray *container;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  gateways = propagate_made (result, error);
  if (gateways == NULL)
    return NULL;

  /* Bindings free a container themselves: it must not free the items. */
  container = g_ptr_array_new_full (gateways->len, NULL);
  for (guint i = 0; i < gateways->len; i++)
    g_ptr_array_add (container, g_ptr_array_index (gateways, i));
  return container;
}

typedef struct
{
  ExecnetGroup *group;
  const char * const *specs;
} MakeManyData;

static void
start_make_many (gpointer            data,
                 GAsyncReadyCallback callback,
                 gpointer            user_data)
{
  MakeManyData *make = data;

  execnet_group_make_gateways_async (make->group, make->specs, NULL, callback, user_data);
}

/**
 * execnet_group_make_gateways:
 * @self: a group
 * @specs: (array zero-terminated=1): spec texts
 * @error: return location for a #GError
 *
 * Makes one gateway per spec, all started at once, and waits until all are
 * ready. If one fails, those that started are terminated and the first
 * error is returned.
 *
 * Returns: (transfer container) (element-type ExecnetGateway): the new
 *   gateways, owned by the group, in the order of the specs; %NULL on
 *   error
 *
 * Since: 1.0
 */
GPtrArray *
execnet_group_make_gateways (ExecnetGroup        *self,
                             const char * const  *specs,
                             GError             **error)
{
  MakeManyData make = { self, specs };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);
  g_return_val_if_fail (specs != NULL, NULL);

  result = _execnet_run_sync (start_make_many, &make);
  return execnet_group_make_gateways_finish (self, result, error);
}

/**
 * execnet_group_new_with_specs:
 * @specs: (array zero-terminated=1): spec texts
 * @error: return location for a #GError
 *
 * Makes a group with one gateway per spec, all started at once; a spec
 * written `N*SPEC` makes N gateways from SPEC, as pytest-xdist's
 * `--tx 4*popen`. If any fails, those that started are terminated and the first error is returned.
 * The members are listed in the order of the specs.
 *
 * Returns: (transfer full): the group, or %NULL on error
 *
 * Since: 1.0
 */
ExecnetGroup *
execnet_group_new_with_specs (const char * const  *specs,
                              GError             **error)
{
  g_autoptr(ExecnetGroup) self = execnet_group_new ();
  g_autoptr(GPtrArray) gateways = NULL;

  g_return_val_if_fail (specs != NULL, NULL);

  gateways = execnet_group_make_gateways (self, specs, error);
  if (gateways == NULL)
    return NULL;

  return g_steal_pointer (&self);
}

/* Any thread: @gateway exited; it leaves the members and waits to be joined. */
void
_execnet_group_gateway_exited (ExecnetGroup   *self,
                               ExecnetGateway *gateway)
{
  guint position;
  gboolean found;

  g_mutex_lock (&self->lock);
  found = g_ptr_array_find (self->gateways, gateway, &position);
  if (found)
    {
      g_ptr_array_add (self->to_join, g_object_ref (gateway));
      g_ptr_array_remove_index (self->gateways, position);
      changed_unlocked (self, position, 1, NULL);
    }
  g_mutex_unlock (&self->lock);

  _execnet_gateway_clear_group (gateway);
  if (found)
    flush_if_home (self);
}

/**
 * execnet_group_lookup:
 * @self: a group
 * @id: a gateway id
 *
 * Finds a member by id, like Python's `group["gw0"]`.
 *
 * Returns: (transfer none) (nullable): the member with @id, or %NULL
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_lookup (ExecnetGroup *self,
                      const char   *id)
{
  ExecnetGateway *found = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->gateways->len && found == NULL; i++)
    if (g_str_equal (execnet_gateway_get_id (g_ptr_array_index (self->gateways, i)), id))
      found = g_ptr_array_index (self->gateways, i);
  g_mutex_unlock (&self->lock);

  return found;
}

/**
 * execnet_group_contains:
 * @self: a group
 * @gateway: a gateway
 *
 * Whether @gateway is a member of the group.
 *
 * Returns: whether @gateway is a member, like Python's `gw in group`
 *
 * Since: 1.0
 */
gboolean
execnet_group_contains (ExecnetGroup   *self,
                        ExecnetGateway *gateway)
{
  gboolean found;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), FALSE);

  g_mutex_lock (&self->lock);
  found = g_ptr_array_find (self->gateways, gateway, NULL);
  g_mutex_unlock (&self->lock);

  return found;
}

/**
 * execnet_group_get_size:
 * @self: a group
 *
 * Counts the members of the group.
 *
 * Returns: the number of members
 *
 * Since: 1.0
 */
guint
execnet_group_get_size (ExecnetGroup *self)
{
  guint size;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), 0);

  g_mutex_lock (&self->lock);
  size = self->gateways->len;
  g_mutex_unlock (&self->lock);

  return size;
}

/**
 * execnet_group_get_gateway:
 * @self: a group
 * @index: a position
 *
 * Gets a member by position, in the order their starts were asked for.
 *
 * Returns: (transfer none) (nullable): the member at @index, or %NULL
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_group_get_gateway (ExecnetGroup *self,
                           guint         index)
{
  ExecnetGateway *gateway = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);

  g_mutex_lock (&self->lock);
  if (index < self->gateways->len)
    gateway = g_ptr_array_index (self->gateways, index);
  g_mutex_unlock (&self->lock);

  return gateway;
}

/**
 * execnet_group_get_default_spec:
 * @self: a group
 *
 * Gets the spec that execnet_group_make_gateway() uses when it is given none.
 * Safe to call from any thread: the string stays valid for the life of the
 * process, even after another default spec is set.
 *
 * Returns: the spec used when none is given; `popen` unless set
 *
 * Since: 1.0
 */
const char *
execnet_group_get_default_spec (ExecnetGroup *self)
{
  const char *spec;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);

  g_mutex_lock (&self->lock);
  spec = self->default_spec;
  g_mutex_unlock (&self->lock);

  return spec;
}

/* The group's context: a property changed. */
static void
emit_notify (GObject  *object,
             gpointer  data)
{
  g_object_notify_by_pspec (object, data);
}

/**
 * execnet_group_set_default_spec:
 * @self: a group
 * @spec: (nullable): the spec used when none is given; %NULL for `popen`
 *
 * Sets [property@Execnet.Group:default-spec]. Safe to call from any thread;
 * strings that execnet_group_get_default_spec() returned earlier stay
 * valid.
 *
 * Since: 1.0
 */
void
execnet_group_set_default_spec (ExecnetGroup *self,
                                const char   *spec)
{
  gboolean changed;

  g_return_if_fail (EXECNET_IS_GROUP (self));

  if (spec == NULL)
    spec = "popen";

  g_mutex_lock (&self->lock);
  changed = g_strcmp0 (self->default_spec, spec) != 0;
  if (changed)
    {
      self->default_spec = g_intern_string (spec);
    }
  g_mutex_unlock (&self->lock);

  if (changed)
    {
      _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_notify,
                              properties[PROP_DEFAULT_SPEC], NULL);
      flush_if_home (self);
    }
}

/* Any thread: the members as they are now, each with a reference. */
static GPtrArray *
dup_members (ExecnetGroup *self)
{
  GPtrArray *members;

  g_mutex_lock (&self->lock);
  members = g_ptr_array_copy (self->gateways, (GCopyFunc) (void (*) (void)) g_object_ref, NULL);
  g_ptr_array_set_free_func (members, g_object_unref);
  g_mutex_unlock (&self->lock);

  return members;
}

/* How many relays stand between the master and @gateway's interpreter. */
static guint
via_depth (ExecnetGateway *gateway)
{
  guint depth = 0;

  for (ExecnetGateway *via = _execnet_gateway_get_via (gateway); via != NULL;
       via = _execnet_gateway_get_via (via))
    depth++;
  return depth;
}

/* Ends the via= members before the gateways they are relayed through,
 * deepest first: a relay that went first would leave its proxied
 * interpreters to notice a broken pipe instead of a goodbye. What has not
 * ended by @deadline is killed; the main loop of terminate() reaps it. */
static void
end_proxied (ExecnetGroup *self,
             gint64        deadline)
{
  g_autoptr(GPtrArray) members = dup_members (self);
  guint max_depth = 0;

  for (guint i = 0; i < members->len; i++)
    max_depth = MAX (max_depth, via_depth (g_ptr_array_index (members, i)));

  for (guint depth = max_depth; depth > 0; depth--)
    {
      g_autoptr(GPtrArray) level = g_ptr_array_new ();

      for (guint i = 0; i < members->len; i++)
        {
          ExecnetGateway *gateway = g_ptr_array_index (members, i);

          if (via_depth (gateway) == depth)
            {
              execnet_gateway_exit (gateway);
              g_ptr_array_add (level, gateway);
            }
        }
      for (guint i = 0; i < level->len; i++)
        if (!_execnet_gateway_wait_ended (g_ptr_array_index (level, i), deadline))
          _execnet_gateway_kill (g_ptr_array_index (level, i));
    }
}

/* @gateway was killed, but nothing confirmed its end within REAP_TIMEOUT
 * (a socket server that does not end interpreters on request, a remote
 * that outlives its ssh channel): let go of its connection for good, and
 * say what may be left. */
static void
set_end_unconfirmed (ExecnetGateway  *gateway,
                     GError         **error)
{
  const char *address = execnet_gateway_get_remote_address (gateway);

  _execnet_gateway_kill (gateway);
  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
               "gateway %s was killed, but nothing confirmed its end within %g seconds: "
               "its interpreter (%s), and whatever that started, may still be running; "
               "end them on that host",
               execnet_gateway_get_id (gateway), REAP_TIMEOUT,
               address != NULL ? address : "address unknown");
}

/**
 * execnet_group_terminate:
 * @self: a group
 * @timeout: seconds to wait for the members to end before killing them;
 *   negative waits for ever and kills nothing; NaN fails with
 *   %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Makes every member exit, all at once, and waits for all of them together;
 * gateways started through another one (`via=`) are ended first, the
 * deepest first, then those they were relayed through. Whatever has not
 * ended after @timeout is killed and reaped. Afterwards the
 * group is empty.
 *
 * %TRUE means every member's end was confirmed: for popen, by the exit of
 * the interpreter (whose process group is killed too); for socket, by the
 * server closing the connection, which `execnet-tool socketserver` does
 * once the interpreter has exited and its process group was killed; for
 * ssh, by the end of the ssh channel. When a killed member's end is not
 * confirmed within 5 more seconds (a socket server that does not end
 * interpreters on request, such as Python execnet's, while the interpreter
 * is stuck), the group lets go of it and this returns %FALSE with an
 * error naming the gateway and the address where its interpreter may
 * still run.
 *
 * Returns: %TRUE when every member's end was confirmed; %FALSE with an
 *   error naming one whose end was not
 *
 * Since: 1.0
 */
gboolean
execnet_group_terminate (ExecnetGroup  *self,
                         gdouble        timeout,
                         GError       **error)
{
  g_return_val_if_fail (EXECNET_IS_GROUP (self), FALSE);

  if (!_execnet_check_timeout (timeout, error))
    return FALSE;

  end_proxied (self, _execnet_deadline_from_timeout (timeout));

  for (;;)
    {
      g_autoptr(GPtrArray) members = NULL;
      g_autoptr(GPtrArray) joining = NULL;
      g_autoptr(GPtrArray) killed = g_ptr_array_new ();
      gint64 deadline = _execnet_deadline_from_timeout (timeout);
      gint64 reap_deadline;

      members = dup_members (self);

      for (guint i = 0; i < members->len; i++)
        execnet_gateway_exit (g_ptr_array_index (members, i));

      g_mutex_lock (&self->lock);
      joining = g_steal_pointer (&self->to_join);
      self->to_join = g_ptr_array_new_with_free_func (g_object_unref);
      g_mutex_unlock (&self->lock);

      if (joining->len == 0)
        break;

      for (guint i = 0; i < joining->len; i++)
        {
          ExecnetGateway *gateway = g_ptr_array_index (joining, i);

          if (!_execnet_gateway_wait_ended (gateway, deadline))
            {
              _execnet_gateway_kill (gateway);
              g_ptr_array_add (killed, gateway);
            }
        }

      reap_deadline = _execnet_deadline_from_timeout (REAP_TIMEOUT);
      for (guint i = 0; i < killed->len; i++)
        {
          ExecnetGateway *gateway = g_ptr_array_index (killed, i);

          if (!_execnet_gateway_wait_ended (gateway, reap_deadline))
            {
              set_end_unconfirmed (gateway, error);
              return FALSE;
            }
        }
    }

  return TRUE;
}

/* terminate_async: each round asks every member to exit and waits, in the
 * caller's context, for all that left the group to end; when the timeout
 * passes (or the caller cancels), what is left is killed and waited for
 * again, up to REAP_TIMEOUT. Rounds repeat while gateways joined the group
 * meanwhile. A fixed set of gateways (a failed make_gateways) gets one
 * round. */
typedef struct
{
  GPtrArray *fixed;            /* (element-type ExecnetGateway) (owned) (nullable) */
  gdouble timeout;
  GPtrArray *joining;          /* (element-type ExecnetGateway) (owned) this round's */
  guint pending;
  gboolean killed;
  GSource *timer;              /* (owned) (nullable) */
  GSource *cancel_source;      /* (owned) (nullable) */
  GCancellable *waits;         /* (owned) cancelled when reaping times out */
  gboolean returned;

  /* The via= members first, one depth at a time, as end_proxied() does. */
  guint depth;                 /* the depth being ended; 0: done */
  guint level_serial;          /* tells this level's callbacks from late ones */
  guint level_pending;
  GPtrArray *level;            /* (element-type ExecnetGateway) (owned) (nullable) */
  gint64 level_deadline;       /* monotonic; -1: none */
} Terminate;

static void
terminate_free (gpointer data)
{
  Terminate *term = data;

  g_clear_pointer (&term->fixed, g_ptr_array_unref);
  g_clear_pointer (&term->joining, g_ptr_array_unref);
  g_clear_pointer (&term->level, g_ptr_array_unref);
  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  g_clear_pointer (&term->cancel_source, _execnet_cancel_source_free);
  g_clear_object (&term->waits);
  g_free (term);
}

static void terminate_round (GTask *task);
static void terminate_level (GTask *task);

/* The caller's context: stop waiting for @task; it fails or succeeds now. */
static void
terminate_return (GTask  *task,
                  GError *error)  /* (transfer full) (nullable) */
{
  Terminate *term = g_task_get_task_data (task);

  term->returned = TRUE;
  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  g_clear_pointer (&term->cancel_source, _execnet_cancel_source_free);
  if (error != NULL)
    _execnet_task_return_error (task, error);
  else if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                    "terminate was cancelled; the gateways were killed and reaped");
  else
    _execnet_task_return_boolean (task, TRUE);
}

static gboolean
on_reap_timeout (gpointer data)
{
  GTask *task = data;
  Terminate *term = g_task_get_task_data (task);
  ExecnetGateway *stuck = NULL;
  GError *error = NULL;

  for (guint i = 0; i < term->joining->len && stuck == NULL; i++)
    if (!_execnet_gateway_wait_ended (g_ptr_array_index (term->joining, i), 0))
      stuck = g_ptr_array_index (term->joining, i);

  g_cancellable_cancel (term->waits);
  if (stuck != NULL)
    {
      set_end_unconfirmed (stuck, &error);
      terminate_return (task, g_steal_pointer (&error));
    }
  else
    terminate_return (task, NULL);
  return G_SOURCE_REMOVE;
}

/* The caller's context: the timeout passed or the caller cancelled: kill
 * what is left, and give it REAP_TIMEOUT to be reaped. */
static void
terminate_kill (GTask *task)
{
  Terminate *term = g_task_get_task_data (task);

  if (term->killed)
    return;
  term->killed = TRUE;
  for (guint i = 0; i < term->joining->len; i++)
    if (!_execnet_gateway_wait_ended (g_ptr_array_index (term->joining, i), 0))
      _execnet_gateway_kill (g_ptr_array_index (term->joining, i));

  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  term->timer = g_timeout_source_new ((guint) (REAP_TIMEOUT * 1000));
  g_source_set_static_name (term->timer, "[execnet] reap timeout");
  g_source_set_callback (term->timer, on_reap_timeout, task, NULL);
  g_source_attach (term->timer, g_task_get_context (task));
}

static gboolean
on_terminate_timeout (gpointer data)
{
  terminate_kill (data);
  return G_SOURCE_REMOVE;
}

/* The caller's context: the via= members of this depth had their time, or
 * the caller cancelled: kill what is left of them and go on to the next
 * depth at once, as end_proxied() does; the last round reaps them. */
static void
terminate_level_kill (GTask *task)
{
  Terminate *term = g_task_get_task_data (task);

  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  for (guint i = 0; i < term->level->len; i++)
    if (!_execnet_gateway_wait_ended (g_ptr_array_index (term->level, i), 0))
      _execnet_gateway_kill (g_ptr_array_index (term->level, i));
  term->depth--;
  terminate_level (task);
}

static gboolean
on_level_timeout (gpointer data)
{
  terminate_level_kill (data);
  return G_SOURCE_REMOVE;
}

typedef struct
{
  GTask *task;        /* (owned) */
  guint serial;
} LevelWait;

static void
on_level_member_ended (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  LevelWait *wait = user_data;
  g_autoptr(GTask) task = wait->task;
  Terminate *term = g_task_get_task_data (task);
  gboolean current = wait->serial == term->level_serial;

  g_free (wait);
  _execnet_gateway_wait_ended_finish (EXECNET_GATEWAY (source), result, NULL);
  if (!current || --term->level_pending > 0)
    return;

  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  term->depth--;
  terminate_level (task);
}

/* The caller's context: asks the members of the deepest via= level left to
 * exit and waits for them (until the level deadline), then goes on to the
 * next depth; after depth 1, to the rounds that end everything else. */
static void
terminate_level (GTask *task)
{
  ExecnetGroup *self = g_task_get_source_object (task);
  Terminate *term = g_task_get_task_data (task);
  g_autoptr(GPtrArray) members = dup_members (self);

  term->level_serial++;
  g_clear_pointer (&term->level, g_ptr_array_unref);
  term->level = g_ptr_array_new_with_free_func (g_object_unref);
  for (; term->depth > 0 && term->level->len == 0; term->depth--)
    for (guint i = 0; i < members->len; i++)
      if (via_depth (g_ptr_array_index (members, i)) == term->depth)
        g_ptr_array_add (term->level, g_object_ref (g_ptr_array_index (members, i)));

  if (term->level->len == 0)
    {
      terminate_round (task);
      return;
    }
  /* The loop stepped past the level it found. */
  term->depth++;

  for (guint i = 0; i < term->level->len; i++)
    execnet_gateway_exit (g_ptr_array_index (term->level, i));

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      terminate_level_kill (task);
      return;
    }

  term->level_pending = term->level->len;
  for (guint i = 0; i < term->level->len; i++)
    {
      LevelWait *wait = g_new0 (LevelWait, 1);

      wait->task = g_object_ref (task);
      wait->serial = term->level_serial;
      _execnet_gateway_wait_ended_async (g_ptr_array_index (term->level, i), term->waits,
                                         on_level_member_ended, wait);
    }

  if (term->level_deadline >= 0)
    {
      gint64 left = MAX (term->level_deadline - g_get_monotonic_time (), 0);

      term->timer = g_timeout_source_new ((guint) MIN (left / 1000, (gint64) G_MAXUINT));
      g_source_set_static_name (term->timer, "[execnet] terminate proxied timeout");
      g_source_set_callback (term->timer, on_level_timeout, task, NULL);
      g_source_attach (term->timer, g_task_get_context (task));
    }
}

static gboolean
on_terminate_cancelled (GCancellable *cancellable,
                        gpointer      data)
{
  Terminate *term = g_task_get_task_data (data);

  if (term->depth > 0)
    terminate_level_kill (data);
  else
    terminate_kill (data);
  return G_SOURCE_REMOVE;
}

static void
on_member_ended (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Terminate *term = g_task_get_task_data (task);

  _execnet_gateway_wait_ended_finish (EXECNET_GATEWAY (source), result, NULL);
  if (--term->pending > 0 || term->returned)
    return;

  g_clear_pointer (&term->timer, _execnet_cancel_source_free);
  if (term->fixed != NULL)
    terminate_return (task, NULL);
  else
    terminate_round (task);
}

/* The caller's context. */
static void
terminate_round (GTask *task)
{
  ExecnetGroup *self = g_task_get_source_object (task);
  Terminate *term = g_task_get_task_data (task);
  g_autoptr(GPtrArray) members = NULL;

  members = term->fixed != NULL ? g_ptr_array_ref (term->fixed) : dup_members (self);
  for (guint i = 0; i < members->len; i++)
    execnet_gateway_exit (g_ptr_array_index (members, i));

  g_clear_pointer (&term->joining, g_ptr_array_unref);
  if (term->fixed != NULL)
    term->joining = g_ptr_array_ref (term->fixed);
  else
    {
      g_mutex_lock (&self->lock);
      term->joining = g_steal_pointer (&self->to_join);
      self->to_join = g_ptr_array_new_with_free_func (g_object_unref);
      g_mutex_unlock (&self->lock);
    }

  if (term->joining->len == 0)
    {
      terminate_return (task, NULL);
      return;
    }

  term->killed = FALSE;
  term->pending = term->joining->len;
  for (guint i = 0; i < term->joining->len; i++)
    _execnet_gateway_wait_ended_async (g_ptr_array_index (term->joining, i), term->waits,
                                       on_member_ended, g_object_ref (task));

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    terminate_kill (task);
  else if (term->timeout >= 0)
    {
      term->timer = g_timeout_source_new ((guint) MIN (term->timeout * 1000.0, (gdouble) G_MAXUINT));
      g_source_set_static_name (term->timer, "[execnet] terminate timeout");
      g_source_set_callback (term->timer, on_terminate_timeout, task, NULL);
      g_source_attach (term->timer, g_task_get_context (task));
    }
}

static void
terminate_start (ExecnetGroup        *self,
                 GPtrArray           *fixed,
                 gdouble              timeout,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  Terminate *term = g_new0 (Terminate, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_group_terminate_async);
  term->fixed = fixed != NULL ? g_ptr_array_ref (fixed) : NULL;
  term->timeout = timeout;
  term->waits = g_cancellable_new ();
  g_task_set_task_data (task, term, terminate_free);

  if (!_execnet_check_timeout (timeout, &error))
    {
      term->returned = TRUE;
      _execnet_task_return_error (task, error);
      return;
    }

  /* Only looks the task up through its data, which lives as long as it. */
  term->cancel_source = _execnet_cancel_source_new (cancellable, G_SOURCE_FUNC (on_terminate_cancelled),
                                                    task, NULL);
  if (fixed == NULL)
    {
      g_autoptr(GPtrArray) members = dup_members (self);

      for (guint i = 0; i < members->len; i++)
        term->depth = MAX (term->depth, via_depth (g_ptr_array_index (members, i)));
    }
  term->level_deadline = _execnet_deadline_from_timeout (timeout);
  terminate_level (task);
}

/* @gateways: (element-type ExecnetGateway) (transfer none) */
static void
terminate_gateways_async (ExecnetGroup        *self,
                          GPtrArray           *gateways,
                          gdouble              timeout,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  terminate_start (self, gateways, timeout, NULL, callback, user_data);
}

/**
 * execnet_group_terminate_async:
 * @self: a group
 * @timeout: seconds to wait for the members to end before killing them;
 *   negative waits for ever and kills nothing
 * @cancellable: (nullable): a #GCancellable; cancelling it does not leave
 *   anything behind: what has not ended yet is killed and reaped at once,
 *   then the call fails with %G_IO_ERROR_CANCELLED
 * @callback: (scope async): called when every member has ended
 * @user_data: data for @callback
 *
 * Terminates the group as [method@Execnet.Group.terminate] does, without
 * blocking: every member exits at once, and what has not ended after
 * @timeout is killed and reaped. @callback runs in the thread-default main
 * context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_group_terminate_async (ExecnetGroup        *self,
                               gdouble              timeout,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (EXECNET_IS_GROUP (self));

  terminate_start (self, NULL, timeout, cancellable, callback, user_data);
}

/**
 * execnet_group_terminate_finish:
 * @self: a group
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_group_terminate_async().
 *
 * Returns: %TRUE; %FALSE with an error if it was cancelled (everything
 *   was killed and reaped all the same) or a killed member's end was not
 *   confirmed (see execnet_group_terminate())
 *
 * Since: 1.0
 */
gboolean
execnet_group_terminate_finish (ExecnetGroup  *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * execnet_group_to_string:
 * @self: a group
 *
 * Describes the group as execnet does: `<Group ['gw0', 'gw1']>`.
 *
 * Returns: (transfer full): the description
 *
 * Since: 1.0
 */
char *
execnet_group_to_string (ExecnetGroup *self)
{
  GString *text = g_string_new ("<Group [");

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->gateways->len; i++)
    g_string_append_printf (text, "%s'%s'", i > 0 ? ", " : "",
                            execnet_gateway_get_id (g_ptr_array_index (self->gateways, i)));
  g_mutex_unlock (&self->lock);
  g_string_append (text, "]>");

  return g_string_free (text, FALSE);
}

/**
 * execnet_group_remote_call_full:
 * @self: a group
 * @source: Python source to run on every member
 * @file_name: (nullable): the file name remote tracebacks give @source
 * @function: (nullable): a function defined by @source to call as
 *   `function(channel, **kwargs)` after running it
 * @kwargs: (nullable): the keyword arguments, an `a{sv}` dictionary; a
 *   floating reference is sunk
 * @error: return location for a #GError
 *
 * Runs @source on every member, as
 * [method@Execnet.Gateway.remote_call_full] does on one: dedented, with
 * @file_name in tracebacks, then @function called with @kwargs.
 *
 * Returns: (transfer full): the channels, one per member in order, or %NULL
 *   if any gateway refused
 *
 * Since: 1.0
 */
ExecnetMultiChannel *
execnet_group_remote_call_full (ExecnetGroup  *self,
                                const char    *source,
                                const char    *file_name,
                                const char    *function,
                                GVariant      *kwargs,
                                GError       **error)
{
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GVariant) owned_kwargs = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);
  g_return_val_if_fail (source != NULL, NULL);
  g_return_val_if_fail (kwargs == NULL || g_variant_is_of_type (kwargs, G_VARIANT_TYPE ("a{sv}")), NULL);

  if (kwargs != NULL)
    owned_kwargs = g_variant_ref_sink (kwargs);

  members = dup_members (self);

  for (guint i = 0; i < members->len; i++)
    {
      ExecnetChannel *channel = execnet_gateway_remote_call_full (g_ptr_array_index (members, i),
                                                                  source, file_name, function,
                                                                  owned_kwargs, error);

      if (channel == NULL)
        return NULL;
      g_ptr_array_add (channels, channel);
    }

  return execnet_multi_channel_new ((ExecnetChannel * const *) channels->pdata, channels->len);
}

/**
 * execnet_group_remote_exec:
 * @self: a group
 * @source: Python source to run on every member
 * @error: return location for a #GError
 *
 * Runs @source on every member, dedented as
 * [method@Execnet.Gateway.remote_exec] does.
 *
 * Returns: (transfer full): the channels, one per member in order, or %NULL
 *   if any gateway refused
 *
 * Since: 1.0
 */
ExecnetMultiChannel *
execnet_group_remote_exec (ExecnetGroup  *self,
                           const char    *source,
                           GError       **error)
{
  return execnet_group_remote_call_full (self, source, NULL, NULL, NULL, error);
}

/**
 * execnet_group_remote_exec_file:
 * @self: a group
 * @file: a Python source file
 * @cancellable: (nullable): a #GCancellable for reading @file
 * @error: return location for a #GError
 *
 * Runs the whole of @file on every member, as
 * [method@Execnet.Gateway.remote_exec_file] does on one.
 *
 * Returns: (transfer full): the channels, one per member in order, or %NULL
 *   if @file cannot be read or any gateway refused
 *
 * Since: 1.0
 */
ExecnetMultiChannel *
execnet_group_remote_exec_file (ExecnetGroup  *self,
                                GFile         *file,
                                GCancellable  *cancellable,
                                GError       **error)
{
  g_autofree char *source = NULL;
  g_autofree char *file_name = NULL;

  g_return_val_if_fail (EXECNET_IS_GROUP (self), NULL);
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  if (!_execnet_load_source_file (file, cancellable, &source, &file_name, error))
    return NULL;

  return execnet_group_remote_call_full (self, source, file_name, NULL, NULL, error);
}

/**
 * execnet_default_group:
 *
 * The group that execnet_make_gateway() uses, made on first use.
 *
 * Returns: (transfer none): the default group
 *
 * Since: 1.0
 */
ExecnetGroup *
execnet_default_group (void)
{
  static ExecnetGroup *group = NULL;

  if (g_once_init_enter (&group))
    g_once_init_leave (&group, execnet_group_new ());

  return group;
}

/**
 * execnet_make_gateway:
 * @spec: (nullable): the spec text, or %NULL for the default group's
 *   default spec
 * @error: return location for a #GError
 *
 * Makes a gateway in the default group.
 *
 * Returns: (transfer none): the gateway, owned by the default group, or
 *   %NULL on error
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_make_gateway (const char  *spec,
                      GError     **error)
{
  return execnet_group_make_gateway (execnet_default_group (), spec, error);
}
