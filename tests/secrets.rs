//! SOPS decryption against the vectors made with the real sops 3.11 and age
//! 1.1.1 (`tests/fixtures/sops/`, see its README): every vector decrypts to
//! exactly what `sops decrypt` printed, every tampered file is refused.

use std::path::{Path, PathBuf};

use stack_core::secrets::identities::Identities;
use stack_core::secrets::tree::Tree;
use stack_core::secrets::{SecretsError, decrypt_file};

#[path = "secrets/age.rs"]
mod age_files;
#[path = "secrets/edit.rs"]
mod edit;
#[path = "secrets/groups.rs"]
mod groups;
#[path = "secrets/pgp.rs"]
mod pgp;

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
        stack_core::secrets::tree::parse_yaml(&text).unwrap()
    };
    trees.iter().map(Tree::to_value).collect()
}

/// Run `program` in a test's folder with these variables, and no default
/// key file.
fn run_in(
    test: &crate::harness::Test,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> crate::harness::Output {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .current_dir(test.path())
        .env("NO_COLOR", "1")
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    crate::harness::Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run the real sops in a test's folder, with `key` as its identity file.
fn run_sops(
    sops: &Path,
    test: &crate::harness::Test,
    key: &str,
    args: &[&str],
) -> crate::harness::Output {
    let key = test.path().join(key).display().to_string();
    run_in(test, sops, args, &[("SOPS_AGE_KEY_FILE", key)])
}

/// When the real sops is there: it decrypts `file` with the identity file
/// `key` to text that contains `expected`.
#[track_caller]
fn assert_real_sops_decrypts(test: &crate::harness::Test, key: &str, file: &str, expected: &str) {
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let output = run_sops(&sops, test, key, &["decrypt", file]).success();
    assert!(
        output.stdout.contains(expected),
        "{file}: {}",
        output.stdout
    );
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
fn the_decrypt_command_prints_what_sops_printed() {
    let manifest: serde_json::Value = serde_json::from_str(&fixture("manifest.json")).unwrap();
    let test = crate::harness::Test::new();
    let mut checked = 0;
    for vector in manifest["vectors"].as_array().unwrap() {
        let (Some(output), "ok") = (
            vector["sops_decrypt_output"].as_str(),
            vector["expected"].as_str().unwrap(),
        ) else {
            continue;
        };
        let encrypted = fixtures().join(vector["encrypted"].as_str().unwrap());
        let keys: String = vector["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| fixture(key.as_str().unwrap()))
            .collect();
        let stack = Path::new(env!("CARGO_BIN_EXE_stack"));
        let args = ["secrets", "decrypt", encrypted.to_str().unwrap()];
        let printed = run_in(&test, stack, &args, &[("SOPS_AGE_KEY", keys)])
            .success()
            .stdout;
        let extension = Path::new(output).extension().unwrap();
        let parsed: Vec<serde_json::Value> = if extension == "json" {
            vec![serde_json::from_str(&printed).unwrap()]
        } else {
            stack_core::secrets::tree::parse_yaml(&printed)
                .unwrap()
                .iter()
                .map(Tree::to_value)
                .collect()
        };
        assert_eq!(parsed, expected(output), "{}", vector["name"]);
        checked += 1;
    }
    assert_eq!(checked, 17);
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
    let sops_run = |args: &[&str]| run_sops(&sops, &test, "key.txt", args).success().stdout;
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
        stack_core::secrets::tree::parse_yaml(text)
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
        stack_core::secrets::tree::parse_yaml(text)
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
    let output = run_sops(&sops, &test, "key.txt", &["decrypt", "secrets/enc.yaml"]).success();
    assert_eq!(parse(&output.stdout), parse(plain));
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

fn update_keys(test: &crate::harness::Test, key: &str) {
    test.stack(&[
        "secrets",
        "updatekeys",
        "secrets/db.yaml",
        "--age-key-file",
        key,
    ])
    .success();
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
    update_keys(&test, "a.txt");
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
    assert_real_sops_decrypts(&test, "a.txt", "secrets/db.yaml", "password: hunter22");
}

/// A file that is not what `stack secrets` expects, the command run on it,
/// and what the error and its hint must say.
struct BadInput {
    file: &'static str,
    contents: String,
    args: &'static [&'static str],
    message: &'static str,
    hint: &'static str,
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn bad_inputs() -> Vec<BadInput> {
    let simple = fixture("simple.enc.yaml");
    let sops_block = "sops:\n    lastmodified: \"2026-11-23T18:20:23Z\"\n    mac: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n    version: 3.11.0\n";
    let decrypt: &[&str] = &["secrets", "decrypt", "s.yaml", "--age-key-file", "keys.txt"];
    let encrypt: &[&str] = &["secrets", "encrypt", "s.yaml"];
    vec![
        BadInput {
            file: "s.yaml",
            contents: "password: hunter22\n".into(),
            args: decrypt,
            message: "error: s.yaml: not a SOPS file (no `sops` metadata)",
            hint: "hint: encrypt it with `stack secrets encrypt --in-place`",
        },
        BadInput {
            file: "s.yaml",
            contents: simple.replacen(
                "username: ENC[AES256_GCM,data:",
                "username: ENC[AES256_GCM,dat:",
                1,
            ),
            args: decrypt,
            message: "error: s.yaml: cannot decrypt `username`: malformed ENC[…]: no `data`",
            hint: "hint: restore the file from git",
        },
        BadInput {
            file: "s.yaml",
            contents: fixture("tampered-gcm.enc.yaml"),
            args: decrypt,
            message: "error: s.yaml: cannot decrypt `username`: authentication failed",
            hint: "hint: restore the file from git",
        },
        BadInput {
            file: "s.yaml",
            contents: fixture("tampered-mac.enc.yaml"),
            args: decrypt,
            message: "error: s.yaml: MAC mismatch",
            hint: "hint: restore the file from git",
        },
        BadInput {
            file: "s.yaml",
            contents: fixture("tampered-lastmodified.enc.yaml"),
            args: decrypt,
            message: "error: s.yaml: cannot decrypt the MAC",
            hint: "hint: restore the file from git",
        },
        BadInput {
            file: "s.yaml",
            contents: format!(
                "a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n{sops_block}    pgp:\n        - fp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21\n          enc: x\n"
            ),
            args: decrypt,
            message: "error: s.yaml: no identity can decrypt it (recipients: pgp:85D77543B3D624B63CEA9E6DBC17301B491B3F21)",
            hint: "for 85D77543B3D624B63CEA9E6DBC17301B491B3F21: ",
        },
        BadInput {
            file: "s.yaml",
            contents: format!(
                "a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n{sops_block}    kms:\n        - arn: arn:aws:kms:eu-west-1:1:key/x\n          enc: x\n"
            ),
            args: decrypt,
            message: "error: s.yaml: encrypted only for kms — not supported, use age or PGP",
            hint: "hint: re-encrypt the file for age or PGP recipients",
        },
        BadInput {
            file: "s.yaml",
            contents: simple.clone(),
            args: &[
                "secrets",
                "decrypt",
                "s.yaml",
                "--age-key-file",
                "keys2.txt",
            ],
            message: "error: s.yaml: no identity can decrypt it (recipients: age1kqr7r4jpvfjyfprhv9pkkytl33pgcghn6cjx94merpxv2tdsm50qjc395g)",
            hint: "hint: identities tried: --age-key-file keys2.txt",
        },
        BadInput {
            file: "s.yaml",
            contents: simple,
            args: &["secrets", "decrypt", "s.yaml"],
            message: "error: s.yaml: no identity can decrypt it",
            hint: "hint: no age identity was found",
        },
        BadInput {
            file: "s.yaml",
            contents: "a: 1\n".into(),
            args: encrypt,
            message: "error: .sops.yaml: no creation rule matches s.yaml",
            hint: "hint: add a creation rule whose path_regex matches",
        },
        BadInput {
            file: "secrets/s.yaml",
            contents: "a: 1\n".into(),
            args: &["secrets", "encrypt", "secrets/s.yaml"],
            message: "error: .sops.yaml: the creation rule for secrets/s.yaml names kms keys — not supported, use age or PGP",
            hint: "hint: name age recipients",
        },
        BadInput {
            file: "badpgp/s.yaml",
            contents: "a: 1\n".into(),
            args: &["secrets", "encrypt", "badpgp/s.yaml"],
            message: "error: .sops.yaml: the creation rule for badpgp/s.yaml: bad PGP fingerprint `not-a-key`: expected hex digits",
            hint: "hint: see `creation_rules`",
        },
    ]
}

#[test]
fn bad_input_is_refused_with_its_path_and_a_hint() {
    for case in bad_inputs() {
        let test = crate::harness::Test::new()
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env("EDITOR", "false")
            .env("GNUPGHOME", "/nonexistent")
            .file(case.file, &case.contents)
            .file(".sops.yaml", "creation_rules:\n  - path_regex: secrets/\n    kms: arn:aws:kms:eu-west-1:1:key/x\n  - path_regex: badpgp/\n    pgp: not-a-key\n  - path_regex: bad/\n    age: age1x\n  - path_regex: other/\n    age: age1kqr7r4jpvfjyfprhv9pkkytl33pgcghn6cjx94merpxv2tdsm50qjc395g\n");
        for key in ["keys.txt", "keys2.txt"] {
            std::fs::copy(fixtures().join(key), test.path().join(key)).unwrap();
        }
        let before = test.read(case.file);
        let output = test.stack(case.args).code(1);
        assert!(
            output.stderr.starts_with(case.message),
            "{}\n{}",
            case.message,
            output.stderr
        );
        assert!(
            output.stderr.contains(case.hint),
            "{}\n{}",
            case.hint,
            output.stderr
        );
        assert!(output.stdout.is_empty(), "{}", output.stdout);
        assert_eq!(test.read(case.file), before, "nothing applied");
    }
}
