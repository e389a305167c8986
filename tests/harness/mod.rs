//! A fluent harness that runs the real `stack` binary in a temporary
//! directory: `Test::example().args(["list"]).run().success().stdout`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod real;

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `stack apply -q` of the example's backend at 1.6.0 (the example deploys
/// 1.5.0).
pub const APPLY_BACKEND_1_6: [&str; 6] = [
    "apply",
    "-q",
    "-l",
    "name=backend",
    "--set",
    "images.backend.tag=1.6.0",
];

/// The repository root, which holds the example platform.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Test {
    /// An empty working directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// A working directory holding a copy of the example platform.
    pub fn example() -> Self {
        let test = Self::new();
        for folder in ["stacks", "environments", "secrets"] {
            copy_dir(&repository().join(folder), &test.path().join(folder));
        }
        let sops_config = repository().join(".sops.yaml");
        if sops_config.exists() {
            std::fs::copy(&sops_config, test.path().join(".sops.yaml")).expect("copy file");
        }
        test
    }

    /// The example with its backend rolled out the default way (not
    /// blue/green): for tests of what every release does, which name the
    /// backend's Deployment `backend`.
    pub fn rolling_backend(self) -> Self {
        let path = self.path().join("stacks/platform.yaml");
        let stack = std::fs::read_to_string(&path).expect("read the stack");
        let start = stack
            .find("    # Each version runs as backend-blue or backend-green")
            .expect("the example's backend is blue/green");
        let end = start
            + stack[start..]
                .find("    strategy: {blueGreen: {service: backend}}\n")
                .expect("its strategy line")
            + "    strategy: {blueGreen: {service: backend}}\n".len();
        std::fs::write(&path, format!("{}{}", &stack[..start], &stack[end..]))
            .expect("write the stack");
        self
    }

    /// The example with its frontend not exposed: for tests that break
    /// the frontend's Service on purpose (its exposure would be the first
    /// error found).
    pub fn unexposed_frontend(self) -> Self {
        let path = self.path().join("stacks/platform.yaml");
        let stack = std::fs::read_to_string(&path).expect("read the stack");
        let line = "    expose: {service: frontend}\n";
        assert!(stack.contains(line), "the example's frontend is exposed");
        std::fs::write(&path, stack.replacen(line, "", 1)).expect("write the stack");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copy a folder of the repository (`tests/fixtures/…`) into the
    /// working directory at `to`.
    pub fn copy(self, from: &str, to: &str) -> Self {
        copy_dir(&repository().join(from), &self.path().join(to));
        self
    }

    /// Write a file (creating folders) relative to the working directory.
    pub fn file(self, path: &str, contents: &str) -> Self {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folders");
        std::fs::write(path, unindent(contents)).expect("write file");
        self
    }

    /// A chart with one ConfigMap named after the release, carrying `values.data`.
    pub fn configmap_chart(self, folder: &str) -> Self {
        self.file(
            &format!("{folder}/templates/configmap.yaml"),
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ release.name }}
            data: {{ values.data | default({}) | tojson }}
            ",
        )
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).expect("read file")
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run from a subfolder of the working directory.
    pub fn cwd(mut self, folder: &str) -> Self {
        self.cwd = Some(self.path().join(folder));
        self
    }

    pub fn run(&self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.stack(&args)
    }

    /// Run `stack` with these arguments. Whatever the test, what the
    /// command prints must not hold a value of the stack's own secrets
    /// files in any form, unless it was asked to show them.
    pub fn stack(&self, args: &[&str]) -> Output {
        let output = output_of(&mut self.command(args));
        if !shows_secrets(args) {
            self.assert_no_known_secret(args, &output);
        }
        output
    }

    /// Fail when `output` holds a form of a value of a secrets file under
    /// `secrets/` that the demo key opens.
    #[track_caller]
    pub fn assert_no_known_secret(&self, args: &[&str], output: &Output) {
        let printed = format!("{}{}", output.stdout, output.stderr);
        for secret in self.known_secrets() {
            for form in secret_forms(&secret) {
                assert!(
                    !printed.contains(&form),
                    "`stack {}` printed a secret as {form:?}:\n{printed}",
                    args.join(" ")
                );
            }
        }
    }

    /// The decrypted values of the secrets files under `secrets/` that the
    /// demo key opens (files it cannot open are not the stack's).
    pub fn known_secrets(&self) -> Vec<String> {
        let dir = self.path().join("secrets");
        let Ok(identities) =
            stack_core::secrets::identities::load(Some(&dir.join("demo-age-key.txt")))
        else {
            return Vec::new();
        };
        let mut secrets = Vec::new();
        for path in files_under(&dir) {
            if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "json")
                && let Ok(decrypted) = stack_core::secrets::decrypt_file(&path, &identities)
            {
                secrets.extend(decrypted.secrets.iter().cloned());
            }
        }
        secrets
    }

    /// `stack` with these arguments, ready to run. The developer's
    /// settings cannot change a result: every `STACK_*` and `SOPS_*`
    /// variable, `KUBECONFIG` and `XDG_CONFIG_HOME` are cleared and `HOME` is
    /// an empty folder of the test (no default age key file); a test sets
    /// what it needs with [`Test::env`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stack"));
        command
            .args(args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.path()))
            .env("NO_COLOR", "1")
            .env("HOME", self.path().join(".home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("KUBECONFIG");
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("STACK_") || name.starts_with("SOPS_") {
                command.env_remove(&key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }
}

/// Commands that print secrets because they were asked to.
fn shows_secrets(args: &[&str]) -> bool {
    args.contains(&"--show-secrets")
        || args
            .windows(2)
            .any(|pair| pair[0] == "secrets" && matches!(pair[1], "decrypt" | "edit" | "keygen"))
}

/// Every form in which `secret` could reach output: verbatim, each line of
/// a multi-line value, JSON-escaped, base64 (standard and URL-safe, with
/// and without padding), percent-encoded, upper- and lower-cased.
pub fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut forms = vec![secret.to_string()];
    forms.extend(secret.lines().map(str::trim).map(str::to_string));
    forms.push(
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    );
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        let encoded = engine.encode(secret);
        forms.push(encoded.trim_end_matches('=').to_string());
        forms.push(encoded);
    }
    let percent: String = secret
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    forms.push(percent);
    forms.push(secret.to_uppercase());
    forms.push(secret.to_lowercase());
    forms.retain(|form| form.len() >= 6);
    forms
}

/// Run a command to its end; a process killed by a signal has code -1.
pub fn output_of(command: &mut Command) -> Output {
    let output = command.output().expect("run stack");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Output {
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

/// `text` holds every one of `expected`.
#[track_caller]
pub fn shows_all(text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

/// Strip the common leading indentation of a Rust string literal, and the
/// first newline, so that files can be written inline in tests.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    out = out.trim_end().to_string();
    out.push('\n');
    out
}

fn copy_dir(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() == ".stack" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// `stack ARGS` killed with SIGKILL just before its `after`+1-th write
/// (`STACK_FAULT_KILL_AFTER_WRITES`): `true` when it was, `false` when the
/// run ended first (successfully).
#[track_caller]
pub fn killed_after(test: &Test, args: &[&str], after: usize) -> bool {
    let killed = output_of(
        test.command(args)
            .env("STACK_FAULT_KILL_AFTER_WRITES", after.to_string()),
    );
    if killed.code == 0 {
        return false;
    }
    assert_eq!(
        killed.code, -1,
        "killed after {after} writes: {}",
        killed.stderr
    );
    true
}

/// `stack cluster traffic --host H --path P -o json` when all 1000
/// requests take one route: its `by` (`service` or `workload`), the path
/// the workload sees, and the auth URL asked first.
pub fn one_route(
    test: &Test,
    host: &str,
    path: &str,
    by: &str,
) -> (String, String, Option<String>) {
    let routed = test
        .stack(&[
            "cluster", "traffic", "--host", host, "--path", path, "-o", "json",
        ])
        .success()
        .json();
    let routed = routed.as_array().expect("routes");
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert_eq!(routed[0]["requests"], 1000);
    let text = |key: &str| routed[0][key].as_str().map(str::to_string);
    (
        text(by).expect("a route"),
        text("path").expect("a path"),
        text("auth"),
    )
}

/// `stack cluster serve` running in the background for a test; killed on drop.
pub struct Server {
    child: std::process::Child,
    pub kubeconfig: PathBuf,
    pub address: String,
    pub dir: PathBuf,
}

impl Server {
    /// Serve the simulated cluster of the stack in `dir` (written if absent).
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        use std::io::BufRead as _;
        if !dir.join("stack.yaml").exists() && !dir.join("stacks").exists() {
            std::fs::write(
                dir.join("stack.yaml"),
                "environments:\n  default:\n    cluster: simulated\n",
            )
            .expect("write stack");
        }
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stack"))
            .args(["cluster", "serve", "--write-kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stack cluster serve");
        // The kubeconfig is printed once the server listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut address = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("read kubeconfig");
            if let Some(server) = line.trim().strip_prefix("server: ") {
                address = server.to_string();
            }
            if line.contains("token:") {
                break;
            }
        }
        assert!(
            !address.is_empty(),
            "stack cluster serve printed no kubeconfig"
        );
        Self {
            child,
            kubeconfig,
            address,
            dir: dir.to_path_buf(),
        }
    }

    /// Kill -9 (no clean shutdown).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `/metrics` of the server.
    pub fn metrics(&self) -> String {
        http_get(&format!("{}/metrics", self.address))
    }

    /// Mutating requests served so far (dry runs not counted).
    pub fn mutating(&self) -> u64 {
        metric(
            &self.metrics(),
            "stack_simulator_mutating_requests_total",
            &[],
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.1 GET on loopback.
pub fn http_get(url: &str) -> String {
    http(url, "GET", "application/json", "").1
}

/// A minimal HTTP/1.1 request on loopback: `(status, body)`.
pub fn http(url: &str, method: &str, content_type: &str, body: &str) -> (u16, String) {
    http_with(url, method, content_type, body, &[])
}

/// [`http`] with more headers. A server that answers before reading the
/// whole body (413) is heard out: a broken write is not an error.
pub fn http_with(
    url: &str,
    method: &str,
    content_type: &str,
    body: &str,
    headers: &[(String, String)],
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

impl Server {
    /// GET a path of the API as JSON.
    /// Answers that are injected faults (500, 429) are asked again, a
    /// bounded number of times.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let mut answer = serde_json::Value::Null;
        for _ in 0..50 {
            answer =
                serde_json::from_str(&http_get(&format!("{}{path}", self.address))).expect("JSON");
            if answer["code"] != 500 && answer["code"] != 429 {
                break;
            }
        }
        answer
    }
}

/// The value of a metric line (summed over its labels) in Prometheus text.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The oldest version of each external tool the tests were written against,
/// and how to ask a binary its version.
const MINIMUM_VERSIONS: &[(&str, &[&str], (u64, u64))] = &[
    ("kubectl", &["version", "--client"], (1, 30)),
    ("sops", &["--version"], (3, 9)),
    ("age", &["--version"], (1, 1)),
    ("helm", &["version", "--short"], (3, 14)),
];

/// The first `major.minor` in a tool's version output.
fn version_of(binary: &Path, args: &[&str]) -> Option<(u64, u64)> {
    let output = Command::new(binary).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    text.split(|c: char| !c.is_ascii_digit() && c != '.')
        .find_map(|word| {
            let mut parts = word.split('.');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
}

/// An external tool the tests need: found through `env_var` or on PATH,
/// and at least the version the tests were written against. In CI
/// (`STACK_REQUIRE_EXTERNAL=1`) a missing or older tool fails the test;
/// elsewhere the test is skipped with a note.
pub fn external_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    let found = find_tool(env_var, name)?;
    let Some((_, args, minimum)) = MINIMUM_VERSIONS.iter().find(|(tool, ..)| *tool == name) else {
        return Some(found);
    };
    let version = version_of(&found, args);
    if version.is_some_and(|version| version >= *minimum) {
        return Some(found);
    }
    let (major, minor) = minimum;
    assert!(
        std::env::var_os("STACK_REQUIRE_EXTERNAL").is_none(),
        "{name} {major}.{minor} or newer is required (STACK_REQUIRE_EXTERNAL is set); {} is {version:?}",
        found.display()
    );
    eprintln!(
        "skipped: {name} at {} is {version:?}, older than {major}.{minor}",
        found.display()
    );
    None
}

fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env_var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("STACK_REQUIRE_EXTERNAL").is_none(),
            "{name} is required (STACK_REQUIRE_EXTERNAL is set) but was not found; set {env_var}"
        );
        eprintln!("skipped: {name} not found (set {env_var})");
    }
    found
}

/// The first line of a streamed (watch) response body.
pub fn http_first_line(url: &str) -> String {
    use std::io::{BufRead as _, Write as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    // Headers, then chunked body: size line, then the event line.
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read");
        if line == "\r\n" {
            break;
        }
    }
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read");
        let trimmed = line.trim();
        if trimmed.starts_with('{') {
            return trimmed.to_string();
        }
        assert!(!line.is_empty(), "the stream ended before an event");
    }
}

/// The stack name `stack` gives a test's folder (`.tmpAbC` → `tmpabc`): a
/// DNS label, as lock names and label values must be.
pub fn stack_label(dir: &Path) -> String {
    stack_kube::object::dns_label(&dir.file_name().expect("a folder").to_string_lossy())
}

/// Every file under `dir`, in its subfolders too.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
