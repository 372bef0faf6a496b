/* replay-main.c: runs a fuzz target on saved inputs, without libFuzzer
 *
 * Usage: fuzz-TARGET-replay FILE-OR-DIRECTORY...
 * Each file, and each file in each directory, is passed once to
 * LLVMFuzzerTestOneInput(), so the normal test run replays the corpora and
 * any crash reproducer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static gboolean
replay_file (const char  *path,
             GError     **error)
{
  g_autofree char *contents = NULL;
  gsize length;

  if (!g_file_get_contents (path, &contents, &length, error))
    return FALSE;

  LLVMFuzzerTestOneInput ((const uint8_t *) contents, length);
  return TRUE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

int
main (int   argc,
      char *argv[])
{
  guint n_inputs = 0;

  if (argc < 2)
    {
      g_printerr ("usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
      return EXIT_FAILURE;
    }

  for (int i = 1; i < argc; i++)
    {
      g_autoptr(GError) error = NULL;

      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_autoptr(GDir) dir = g_dir_open (argv[i], 0, &error);
          g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
          const char *name;

          if (dir == NULL)
            {
              g_printerr ("%s\n", error->message);
              return EXIT_FAILURE;
            }

          while ((name = g_dir_read_name (dir)) != NULL)
            g_ptr_array_add (names, g_build_filename (argv[i], name, NULL));
          g_ptr_array_sort (names, compare_names);

          for (guint j = 0; j < names->len; j++)
            {
              if (!replay_file (g_ptr_array_index (names, j), &error))
                {
                  g_printerr ("%s\n", error->message);
                  return EXIT_FAILURE;
                }
              n_inputs++;
            }
        }
      else
        {
          if (!replay_file (argv[i], &error))
            {
              g_printerr ("%s\n", error->message);
              return EXIT_FAILURE;
            }
          n_inputs++;
        }
    }

  g_print ("replayed %u inputs\n", n_inputs);
  return EXIT_SUCCESS;
}
