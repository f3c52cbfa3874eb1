// SPDX-License-Identifier: GPL-2.0

//! `vm_fault::VmFault`: only the layer's fault trampolines make one, for
//! the fault being handled, and it holds no Rust reference to the C
//! `vm_fault`, which the mm core changes meanwhile (issue 24, item 7).

use crate::kernel_ext::vm_fault::VmFault;

/// Reads a fault, as a driver's hook does.
pub fn index(fault: &VmFault<'_>) -> Option<usize> {
    fault.pgoff().checked_sub(fault.address() & 0)
}

/// Makes a fault out of any pointer.
#[cfg(kx_misuse_vm_fault_from_raw)]
pub fn forge(vmf: *mut crate::kernel_ext::bindings::vm_fault) -> VmFault<'static> {
    // SAFETY: None: the function is private to the layer.
    unsafe { VmFault::from_raw(vmf) } //~ ERROR E0624
}
