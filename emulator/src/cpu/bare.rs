//! Bare Unicorn, no hooks: the baseline for `cmaemu bench boot`.
use super::{ucr, CpuError};
use std::ffi::c_void;
use unicorn_engine::{Arch, ArmCpuModel, Mode, Prot, RegisterARM, Unicorn};

/// Run the guest function at `fn_va` (ARM state, `u32 f(u32)`) with `arg`
/// on a bare Cortex-A9 with the MMU off: the kernel image's segments are
/// placed at their virtual addresses. Returns r0.
pub fn run_function(segments: &[(u64, Vec<u8>)], fn_va: u64, arg: u32) -> Result<u32, CpuError> {
    let mut uc = ucr("open", Unicorn::new(Arch::ARM, Mode::ARM))?;
    ucr("cpu model", uc.ctl_set_cpu_model(ArmCpuModel::CORTEX_A9 as i32))?;
    ucr("page size", uc.ctl_set_page_size(4096))?;
    let lo = segments.iter().map(|s| s.0).min().unwrap_or(0) & !0xfff;
    let hi = segments.iter().map(|s| s.0 + s.1.len() as u64).max().unwrap_or(0);
    let size = ((hi - lo) + 0xfff) & !0xfff;
    ucr("map", uc.mem_map(lo, size + 0x10000, Prot::ALL))?;
    for (va, data) in segments {
        ucr("write", uc.mem_write(*va, data))?;
    }
    let stop = lo + size + 0x8000;
    let _ = std::ptr::null::<c_void>();
    ucr("r0", uc.reg_write(RegisterARM::R0, arg as u64))?;
    ucr("lr", uc.reg_write(RegisterARM::LR, stop))?;
    ucr("sp", uc.reg_write(RegisterARM::SP, stop))?;
    ucr("run", uc.emu_start(fn_va, stop, 0, 0))?;
    Ok(uc.reg_read(RegisterARM::R0).unwrap_or(0) as u32)
}
