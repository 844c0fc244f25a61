//! The real kernel on `qemu-system-arm -M vexpress-a9`: the oracle
//! initramfs runs `oracle` (oracle/user/oracle.c) on the console; each step
//! is sent once its prompt is there, and its output is what came before the
//! next prompt.
use super::{follow_ups, step_text, Case, LinuxAssets, OracleError, Transcript};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the QEMU side of a case failed (inside [`OracleError::Qemu`]).
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("cannot start {qemu}: {source}")]
    Start { qemu: String, source: std::io::Error },
    #[error("QEMU exited ({status}) before the prompt: {tail}")]
    Exited { status: std::process::ExitStatus, tail: String },
    #[error("no prompt within {secs} s: {tail}")]
    NoPrompt { secs: u64, tail: String },
    #[error("console: {0}")]
    Console(std::io::Error),
    /// A step's command did not come back to the prompt.
    #[error("`{cmd}`: {source}")]
    Step { cmd: String, source: Box<QemuError> },
    #[error("runner panicked")]
    Panicked,
}

/// The oracle program's prompt.
const PROMPT: &str = "oracle# ";
/// Boot of the real kernel on QEMU (TCG, possibly a loaded machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

struct Qemu {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Qemu {
    /// Wait until the output from `from` on holds a prompt; the text up to
    /// and including it, and where it ends.
    fn until_prompt(&mut self, from: usize, timeout: Duration) -> Result<(String, usize), QemuError> {
        let t0 = Instant::now();
        loop {
            {
                let o = self.out.lock().expect("output lock");
                let text = String::from_utf8_lossy(&o[from.min(o.len())..]).into_owned();
                if let Some(i) = text.find(PROMPT) {
                    let end = i + PROMPT.len();
                    return Ok((text[..end].to_string(), from + end));
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(QemuError::Exited { status: st, tail: self.tail() });
            }
            if t0.elapsed() > timeout {
                return Err(QemuError::NoPrompt { secs: timeout.as_secs(), tail: self.tail() });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tail(&self) -> String {
        let o = self.out.lock().expect("output lock");
        let t = String::from_utf8_lossy(&o[o.len().saturating_sub(600)..]).into_owned();
        t.replace('\r', "")
    }
}

/// Run the case on QEMU + Linux.
pub fn run_qemu(case: &Case, dtb: &[u8], a: &LinuxAssets) -> Result<Transcript, OracleError> {
    let err = |e: QemuError| OracleError::Qemu(case.name.clone(), e);
    let dir = std::env::temp_dir().join(format!("cmaemu-oracle-{}-{}", std::process::id(), case.name));
    std::fs::create_dir_all(&dir).map_err(|e| OracleError::Io(dir.display().to_string(), e))?;
    let dtb_path = dir.join("board.dtb");
    std::fs::write(&dtb_path, dtb).map_err(|e| OracleError::Io(dtb_path.display().to_string(), e))?;
    let t0 = Instant::now();
    let mut child = Command::new(&a.qemu)
        .args(["-M", "vexpress-a9", "-m"])
        .arg(format!("{}M", case.ram >> 20))
        .arg("-kernel")
        .arg(&a.zimage)
        .arg("-dtb")
        .arg(&dtb_path)
        .arg("-initrd")
        .arg(&a.initrd)
        .arg("-append")
        .arg(&case.bootargs)
        .args(["-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio"])
        .env("QEMU_AUDIO_DRV", "none")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| err(QemuError::Start { qemu: a.qemu.display().to_string(), source }))?;
    let mut stdout = child.stdout.take().expect("piped");
    let out = Arc::new(Mutex::new(Vec::new()));
    let o2 = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            o2.lock().expect("output lock").extend_from_slice(&buf[..n]);
        }
    });
    let mut q = Qemu { child, out };
    let (boot, mut at) = q.until_prompt(0, BOOT_TIMEOUT).map_err(err)?;
    let mut t = Transcript { boot: boot.replace('\r', ""), boot_wall: t0.elapsed(), ..Default::default() };
    let mut stdin = q.child.stdin.take().expect("piped");
    for cmd in &case.steps {
        let mut out = String::new();
        for c in std::iter::once(cmd.as_str()).chain(follow_ups(cmd).iter().copied()) {
            stdin.write_all(format!("{c}\n").as_bytes()).and_then(|_| stdin.flush()).map_err(|e| err(QemuError::Console(e)))?;
            let (text, end) = q.until_prompt(at, STEP_TIMEOUT).map_err(|e| err(QemuError::Step { cmd: c.to_string(), source: Box::new(e) }))?;
            at = end;
            out.push_str(&step_text(&text));
        }
        t.steps.push((cmd.clone(), out));
    }
    t.wall = t0.elapsed();
    let _ = stdin.write_all(b"poweroff\n").and_then(|_| stdin.flush());
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = q.child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(t)
}
