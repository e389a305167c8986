//! Decrypting a 1,000-key SOPS file: `stack secrets decrypt` next to the
//! real `sops -d` in the same run (best of 5 each, whole processes). The
//! file is encrypted by the real sops, so sops (`STACK_SOPS` or PATH) is
//! needed. Run: `cargo bench --bench secrets`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn sops_binary() -> Option<PathBuf> {
    std::env::var_os("STACK_SOPS")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("sops"))
                .find(|p| p.is_file())
        })
}

fn best_of(mut run: impl FnMut() -> Vec<u8>) -> (Duration, Vec<u8>) {
    let mut best = Duration::MAX;
    let mut output = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        output = run();
        best = best.min(start.elapsed());
    }
    (best, output)
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn main() {
    let Some(sops) = sops_binary() else {
        println!("sops not found (set STACK_SOPS): benchmark left out");
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    run(Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["secrets", "keygen", "--output-file"])
        .arg(path("key.txt")));
    let key = std::fs::read_to_string(path("key.txt")).expect("key");
    let recipient = key
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("recipient")
        .to_string();
    let mut plain = String::new();
    for index in 0..1000 {
        let _ = writeln!(plain, "key_{index:04}: value-{index}-{}", "x".repeat(24));
    }
    std::fs::write(path("plain.yaml"), plain).expect("plaintext");
    let encrypted = run(Command::new(&sops)
        .args(["encrypt", "--age", &recipient])
        .arg(path("plain.yaml"))
        .current_dir(dir.path())
        .env("SOPS_DISABLE_VERSION_CHECK", "1"));
    std::fs::write(path("secrets.yaml"), encrypted).expect("encrypted");
    let file: &Path = &path("secrets.yaml");
    let (ours, _) = best_of(|| {
        run(Command::new(env!("CARGO_BIN_EXE_stack"))
            .args(["secrets", "decrypt"])
            .arg(file)
            .arg("--age-key-file")
            .arg(path("key.txt")))
    });
    let (theirs, _) = best_of(|| {
        run(Command::new(&sops)
            .args(["decrypt"])
            .arg(file)
            .current_dir(dir.path())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("SOPS_AGE_KEY_FILE", path("key.txt")))
    });
    println!(
        "decrypt 1,000 keys: stack {:.1} ms   sops -d {:.1} ms   stack is {:.1}× faster",
        ours.as_secs_f64() * 1000.0,
        theirs.as_secs_f64() * 1000.0,
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
