//! SOPS decryption against the vectors made with the real sops 3.11 and age
//! 1.1.1 (`tests/fixtures/sops/`, see its README): every vector decrypts to
//! exactly what `sops decrypt` printed, every tampered file is refused.

use std::path::{Path, PathBuf};

use stack::secrets::identities::Identities;
use stack::secrets::tree::Tree;
use stack::secrets::{SecretsError, decrypt_file};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops")
}

fn identities(files: &[&str]) -> Identities {
    let mut identities = Identities {
        keys: Vec::new(),
        sources: Vec::new(),
    };
    for file in files {
        let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
        identities.keys.extend(
            age::IdentityFile::from_buffer(text.as_bytes())
                .unwrap()
                .into_identities()
                .unwrap(),
        );
        identities.sources.push((*file).to_string());
    }
    identities
}

fn expected(file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
    let trees: Vec<Tree> = if Path::new(file).extension().is_some_and(|e| e == "json") {
        vec![serde_json::from_str(&text).unwrap()]
    } else {
        stack::secrets::tree::parse_yaml(&text).unwrap()
    };
    trees.iter().map(Tree::to_value).collect()
}

/// Run the real sops in a test's folder, with `key` as its identity file.
fn run_sops(
    sops: &Path,
    test: &crate::harness::Test,
    key: &str,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(sops)
        .args(args)
        .current_dir(test.path())
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", test.path().join(key))
        .output()
        .unwrap()
}

#[test]
fn every_vector_decrypts_to_what_sops_printed() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for vector in manifest["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let keys: Vec<&str> = vector["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let result = decrypt_file(
            &fixtures().join(vector["encrypted"].as_str().unwrap()),
            &identities(&keys),
        );
        match (vector["expected"].as_str().unwrap(), &result) {
            ("ok", Ok(decrypted)) => {
                if let Some(output) = vector["sops_decrypt_output"].as_str() {
                    let got: Vec<serde_json::Value> =
                        decrypted.documents.iter().map(Tree::to_value).collect();
                    assert_eq!(got, expected(output), "{name}");
                }
            }
            ("error_mac_mismatch", Err(SecretsError::Mac { .. }))
            | ("error_value_decrypt", Err(SecretsError::Value { .. }))
            | ("error_data_key", Err(SecretsError::NoIdentity { .. })) => {}
            (expected, other) => panic!(
                "{name}: expected {expected}, got {:?}",
                other.as_ref().map(|_| "ok")
            ),
        }
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn a_wrong_identity_names_the_recipients_and_what_was_tried() {
    let error = decrypt_file(
        &fixtures().join("simple.enc.yaml"),
        &identities(&["keys2.txt"]),
    )
    .err()
    .unwrap();
    assert!(
        error.to_string().ends_with("simple.enc.yaml: no identity can decrypt it (recipients: age1kqr7r4jpvfjyfprhv9pkkytl33pgcghn6cjx94merpxv2tdsm50qjc395g)"),
        "{error}"
    );
    assert_eq!(error.hint().unwrap(), "identities tried: keys2.txt");
}

#[test]
fn decrypted_strings_are_reported_for_masking() {
    let decrypted = decrypt_file(
        &fixtures().join("simple.enc.yaml"),
        &identities(&["keys.txt"]),
    )
    .unwrap();
    let document = decrypted.documents[0].to_value();
    for value in document.as_object().unwrap().values() {
        assert!(
            decrypted
                .secrets
                .contains(&value.as_str().unwrap().to_string()),
            "{value}"
        );
    }
}

#[test]
fn files_real_sops_writes_decrypt_with_stack() {
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let test = crate::harness::Test::new()
        .file("plain.yaml", "db:\n  password: hunter22\n  port: 5432\n  ratio: 0.5\n  enabled: true\nhosts: [a, b]\nnote_unencrypted: clear\n");
    test.stack(&["secrets", "keygen", "--output-file", "key.txt"])
        .success();
    let key = test.read("key.txt");
    let recipient = key
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    let sops_run = |args: &[&str]| {
        let output = run_sops(&sops, &test, "key.txt", args);
        assert!(
            output.status.success(),
            "sops {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let encrypted = sops_run(&["encrypt", "--age", &recipient, "plain.yaml"]);
    std::fs::write(test.path().join("enc.yaml"), &encrypted).unwrap();
    let ours = test
        .stack(&[
            "secrets",
            "decrypt",
            "enc.yaml",
            "--age-key-file",
            "key.txt",
        ])
        .success()
        .stdout;
    let theirs = sops_run(&["decrypt", "enc.yaml"]);
    let parse = |text: &str| {
        stack::secrets::tree::parse_yaml(text)
            .unwrap()
            .iter()
            .map(Tree::to_value)
            .collect::<Vec<_>>()
    };
    assert_eq!(parse(&ours), parse(&theirs));
    assert!(ours.contains("password: hunter22"));
}

#[test]
fn keygen_writes_a_private_identity_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let test = crate::harness::Test::new();
    let output = test
        .stack(&["secrets", "keygen", "--output-file", "key.txt"])
        .success();
    assert!(
        output.stderr.starts_with("Public key: age1"),
        "{}",
        output.stderr
    );
    let mode = std::fs::metadata(test.path().join("key.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        test.read("key.txt")
            .lines()
            .any(|l| l.starts_with("AGE-SECRET-KEY-1"))
    );
}

#[test]
fn files_stack_encrypts_decrypt_with_real_sops_and_with_stack() {
    let plain = "db:\n  password: hunter22\n  port: 5432\n  ratio: 0.5\n  enabled: true\nhosts: [a, b]\nnote_unencrypted: clear\nempty: \"\"\n";
    let test = crate::harness::Test::new().file("secrets/plain.yaml", plain);
    test.stack(&["secrets", "keygen", "--output-file", "key.txt"])
        .success();
    let recipient = test
        .read("key.txt")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    std::fs::write(
        test.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    age: {recipient}\n"),
    )
    .unwrap();
    test.stack(&[
        "secrets",
        "encrypt",
        "secrets/plain.yaml",
        "--output-file",
        "secrets/enc.yaml",
    ])
    .success();
    let encrypted = test.read("secrets/enc.yaml");
    assert!(
        !encrypted.contains("hunter22") && encrypted.contains("note_unencrypted: clear"),
        "{encrypted}"
    );
    let parse = |text: &str| {
        stack::secrets::tree::parse_yaml(text)
            .unwrap()
            .iter()
            .map(Tree::to_value)
            .collect::<Vec<_>>()
    };
    let ours = test
        .stack(&[
            "secrets",
            "decrypt",
            "secrets/enc.yaml",
            "--age-key-file",
            "key.txt",
        ])
        .success()
        .stdout;
    assert_eq!(parse(&ours), parse(plain));
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let output = run_sops(&sops, &test, "key.txt", &["decrypt", "secrets/enc.yaml"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        parse(&String::from_utf8(output.stdout).unwrap()),
        parse(plain)
    );
}

#[test]
fn encrypt_without_a_matching_rule_is_an_error() {
    let test = crate::harness::Test::new()
        .file("plain.yaml", "a: 1\n")
        .file(
            ".sops.yaml",
            "creation_rules:\n  - path_regex: other/.*\n    age: age1x\n",
        );
    let output = test.stack(&["secrets", "encrypt", "plain.yaml"]).code(1);
    assert!(
        output
            .stderr
            .contains("no creation rule matches plain.yaml"),
        "{}",
        output.stderr
    );
}

/// A folder with two fresh identities, a `.sops.yaml` for the first, and a
/// file encrypted by stack.
fn encrypted_for_first_key() -> (crate::harness::Test, String, String) {
    let test =
        crate::harness::Test::new().file("secrets/db.yaml", "password: hunter22\nuser: admin\n");
    test.stack(&["secrets", "keygen", "--output-file", "a.txt"])
        .success();
    test.stack(&["secrets", "keygen", "--output-file", "b.txt"])
        .success();
    let recipient = |file: &str| {
        test.read(file)
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string()
    };
    let (a, b) = (recipient("a.txt"), recipient("b.txt"));
    std::fs::write(
        test.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/\n    age: {a}\n"),
    )
    .unwrap();
    test.stack(&["secrets", "encrypt", "--in-place", "secrets/db.yaml"])
        .success();
    (test, a, b)
}

fn password_ciphertext(test: &crate::harness::Test) -> String {
    test.read("secrets/db.yaml")
        .lines()
        .find(|l| l.contains("ENC[") && !l.contains("mac"))
        .unwrap()
        .to_string()
}

#[test]
fn updatekeys_rewraps_the_data_key_and_keeps_the_values() {
    let (test, a, b) = encrypted_for_first_key();
    let before = password_ciphertext(&test);
    test.stack(&[
        "secrets",
        "decrypt",
        "secrets/db.yaml",
        "--age-key-file",
        "b.txt",
    ])
    .code(1);
    std::fs::write(
        test.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/\n    age: {a},{b}\n"),
    )
    .unwrap();
    test.stack(&[
        "secrets",
        "updatekeys",
        "secrets/db.yaml",
        "--age-key-file",
        "a.txt",
    ])
    .success();
    assert_eq!(
        password_ciphertext(&test),
        before,
        "values keep their ciphertext"
    );
    let decrypted = test
        .stack(&[
            "secrets",
            "decrypt",
            "secrets/db.yaml",
            "--age-key-file",
            "b.txt",
        ])
        .success();
    assert!(
        decrypted.stdout.contains("password: hunter22"),
        "{}",
        decrypted.stdout
    );
}

#[test]
fn rotate_re_encrypts_with_a_new_data_key() {
    let (test, _, _) = encrypted_for_first_key();
    let before = password_ciphertext(&test);
    test.stack(&[
        "secrets",
        "rotate",
        "secrets/db.yaml",
        "--age-key-file",
        "a.txt",
    ])
    .success();
    assert_ne!(password_ciphertext(&test), before);
    let decrypted = test
        .stack(&[
            "secrets",
            "decrypt",
            "secrets/db.yaml",
            "--age-key-file",
            "a.txt",
        ])
        .success();
    assert!(
        decrypted.stdout.contains("password: hunter22"),
        "{}",
        decrypted.stdout
    );
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let output = run_sops(&sops, &test, "a.txt", &["decrypt", "secrets/db.yaml"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("password: hunter22"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
