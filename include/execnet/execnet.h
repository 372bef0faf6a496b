/* execnet.h: the one header users include
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define __EXECNET_INSIDE__

#include <execnet/execnet-version.h>
#include <execnet/execnet-types.h>
#include <execnet/execnet-enum-types.h>
#include <execnet/execnet-error.h>
#include <execnet/execnet-xspec.h>
#include <execnet/execnet-message.h>
#include <execnet/execnet-serialize.h>
#include <execnet/execnet-channel.h>
#include <execnet/execnet-receive-queue.h>
#include <execnet/execnet-multichannel.h>
#include <execnet/execnet-gateway.h>
#include <execnet/execnet-group.h>
#include <execnet/execnet-connection.h>
#include <execnet/execnet-rsync.h>
#include <execnet/execnet-transport.h>

#undef __EXECNET_INSIDE__
