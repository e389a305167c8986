//! SOPS files whose data key is wrapped for PGP keys: decrypted through gpg
//! and a keyring the test makes, written for PGP and age recipients
//! together, kept on `rotate`, moved to age by `updatekeys` — each read by
//! the real sops as well.

use std::path::{Path, PathBuf};

use super::run_in;
use crate::harness::{Output, Test};

const PLAIN: &str = "password: hunter22\nuser: admin\n";

/// A GnuPG home made for one test: one key without passphrase. Its agent
/// is stopped when the test ends.
struct Keyring {
    gpg: PathBuf,
    home: PathBuf,
    fingerprint: String,
}

impl Keyring {
    /// `None` when gpg is not installed (a failure in CI).
    fn new(test: &Test) -> Option<Self> {
        let gpg = crate::harness::external_tool("STACK_GPG", "gpg")?;
        let home = test.path().join("gnupg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let mut keyring = Self {
            gpg,
            home,
            fingerprint: String::new(),
        };
        let spec = "%no-protection\nKey-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\nName-Real: stack test\nName-Email: test@stack.invalid\nExpire-Date: 0\n%commit\n";
        std::fs::write(test.path().join("key-spec"), spec).unwrap();
        keyring.gpg(&[
            "--gen-key",
            &test.path().join("key-spec").display().to_string(),
        ]);
        let listing = keyring.gpg(&["--list-keys", "--with-colons"]);
        keyring.fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| f.len() == 40))
            .expect("the key's fingerprint")
            .to_string();
        Some(keyring)
    }

    fn gpg(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(&self.gpg)
            .arg("--homedir")
            .arg(&self.home)
            .args(["--batch", "--quiet"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn home(&self) -> String {
        self.home.display().to_string()
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let gpgconf = self.gpg.with_file_name("gpgconf");
        let _ = std::process::Command::new(gpgconf)
            .args(["--homedir", &self.home(), "--kill", "all"])
            .output();
    }
}

/// `program ARGS` in the test's folder with only these keys: the keyring
/// (`GNUPGHOME`) and/or an age identity file.
fn run(
    test: &Test,
    program: &Path,
    args: &[&str],
    keyring: Option<&Keyring>,
    age: Option<&str>,
) -> Output {
    let gnupg = keyring.map_or_else(
        || test.path().join("no-keyring").display().to_string(),
        Keyring::home,
    );
    let mut env = vec![("GNUPGHOME", gnupg)];
    if let Some(key) = age {
        env.push((
            "SOPS_AGE_KEY_FILE",
            test.path().join(key).display().to_string(),
        ));
    }
    run_in(test, program, args, &env)
}

fn stack() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stack"))
}

/// stack, and the real sops when there, decrypt `file` to [`PLAIN`] with
/// these keys.
#[track_caller]
fn assert_both_decrypt(test: &Test, file: &str, keyring: Option<&Keyring>, age: Option<&str>) {
    let ours = run(test, stack(), &["secrets", "decrypt", file], keyring, age).success();
    assert_eq!(ours.stdout, PLAIN);
    if let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") {
        let theirs = run(test, &sops, &["decrypt", file], keyring, age).success();
        assert_eq!(theirs.stdout, PLAIN);
    }
}

/// `secrets/db.yaml` is wrapped for the keyring's key and the age
/// recipient, holds no plaintext, and each key alone opens it.
#[track_caller]
fn assert_for_either_key(test: &Test, keyring: &Keyring, recipient: &str) {
    let encrypted = test.read("secrets/db.yaml");
    assert!(
        encrypted.contains(&format!("fp: {}", keyring.fingerprint))
            && encrypted.contains(&format!("recipient: {recipient}"))
            && !encrypted.contains("hunter22"),
        "{encrypted}"
    );
    assert_both_decrypt(test, "secrets/db.yaml", Some(keyring), None);
    assert_both_decrypt(test, "secrets/db.yaml", None, Some("age.txt"));
}

/// An age identity `age.txt` and its recipient.
fn age_key(test: &Test) -> String {
    test.stack(&["secrets", "keygen", "--output-file", "age.txt"])
        .success();
    test.read("age.txt")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string()
}

fn rule(test: &Test, keys: &str) {
    std::fs::write(
        test.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/\n{keys}"),
    )
    .unwrap();
}

#[test]
fn a_file_real_sops_encrypts_for_a_pgp_key_decrypts_through_gpg() {
    let test = Test::new().file("secrets/plain.yaml", PLAIN);
    let Some(keyring) = Keyring::new(&test) else {
        return;
    };
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let encrypted = run(
        &test,
        &sops,
        &[
            "encrypt",
            "--pgp",
            &keyring.fingerprint,
            "secrets/plain.yaml",
        ],
        Some(&keyring),
        None,
    )
    .success();
    std::fs::write(test.path().join("secrets/db.yaml"), encrypted.stdout).unwrap();
    assert_both_decrypt(&test, "secrets/db.yaml", Some(&keyring), None);
    let refused = run(
        &test,
        stack(),
        &["secrets", "decrypt", "secrets/db.yaml"],
        None,
        None,
    )
    .code(1);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: secrets/db.yaml: no identity can decrypt it (recipients: pgp:{})",
            keyring.fingerprint
        )) && refused.stderr.contains("no-keyring"),
        "{}",
        refused.stderr
    );
}

#[test]
fn stack_encrypts_for_pgp_and_age_together_and_either_key_decrypts() {
    let test = Test::new().file("secrets/db.yaml", PLAIN);
    let Some(keyring) = Keyring::new(&test) else {
        return;
    };
    let recipient = age_key(&test);
    rule(
        &test,
        &format!("    age: {recipient}\n    pgp: {}\n", keyring.fingerprint),
    );
    // gpg is run through SOPS_GPG_EXEC, which logs its arguments: flags and
    // the fingerprint only, never the data key.
    let logger = test.path().join("gpg-logged");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}/gpg-args\nexec {} \"$@\"\n",
            test.path().display(),
            keyring.gpg.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut encrypt = test.command(&["secrets", "encrypt", "--in-place", "secrets/db.yaml"]);
    encrypt
        .env("GNUPGHOME", keyring.home())
        .env("SOPS_GPG_EXEC", &logger);
    crate::harness::output_of(&mut encrypt).success();
    assert_eq!(
        test.read("gpg-args").trim(),
        format!(
            "--batch --quiet --no-tty --armor --trust-model always --no-encrypt-to --encrypt --recipient {}",
            keyring.fingerprint
        )
    );
    assert_for_either_key(&test, &keyring, &recipient);
}

#[test]
fn rotate_keeps_the_pgp_and_age_recipients_of_the_file() {
    let test = Test::new().file("secrets/db.yaml", PLAIN);
    let Some(keyring) = Keyring::new(&test) else {
        return;
    };
    let recipient = age_key(&test);
    rule(
        &test,
        &format!("    age: {recipient}\n    pgp: {}\n", keyring.fingerprint),
    );
    let with_keyring = |args: &[&str]| run(&test, stack(), args, Some(&keyring), None).success();
    with_keyring(&["secrets", "encrypt", "--in-place", "secrets/db.yaml"]);
    let before = test.read("secrets/db.yaml");
    std::fs::remove_file(test.path().join(".sops.yaml")).unwrap();
    with_keyring(&["secrets", "rotate", "secrets/db.yaml"]);
    let after = test.read("secrets/db.yaml");
    assert_ne!(after, before, "a new data key");
    assert_for_either_key(&test, &keyring, &recipient);
}

#[test]
fn updatekeys_moves_a_file_from_pgp_to_age() {
    let test = Test::new().file("secrets/db.yaml", PLAIN);
    let Some(keyring) = Keyring::new(&test) else {
        return;
    };
    rule(&test, &format!("    pgp: {}\n", keyring.fingerprint));
    run(
        &test,
        stack(),
        &["secrets", "encrypt", "--in-place", "secrets/db.yaml"],
        Some(&keyring),
        None,
    )
    .success();
    let recipient = age_key(&test);
    rule(&test, &format!("    age: {recipient}\n"));
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("ENC["))
            .map(str::to_string)
            .collect()
    };
    let before = test.read("secrets/db.yaml");
    run(
        &test,
        stack(),
        &["secrets", "updatekeys", "secrets/db.yaml"],
        Some(&keyring),
        None,
    )
    .success();
    let after = test.read("secrets/db.yaml");
    assert_eq!(
        values(&after),
        values(&before),
        "values keep their ciphertext"
    );
    assert!(
        !after.contains("pgp") && after.contains(&recipient),
        "{after}"
    );
    assert_both_decrypt(&test, "secrets/db.yaml", None, Some("age.txt"));
}
