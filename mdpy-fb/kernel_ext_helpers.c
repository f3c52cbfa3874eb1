// SPDX-License-Identifier: GPL-2.0
/* C shims of the Rust abstraction layer this module uses (see rust/helpers/). */
#include "../rust/helpers/fbdev.c"
