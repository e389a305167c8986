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
