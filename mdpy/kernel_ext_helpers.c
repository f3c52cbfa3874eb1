// SPDX-License-Identifier: GPL-2.0
/* C shims of the Rust abstraction layer (see rust/helpers/helpers.c). */
#include "../rust/helpers/helpers.c"
#include "../rust/helpers/page.c"
