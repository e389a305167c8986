//! Helm charts as a chart source: a local Helm chart (`Chart.yaml`, Go
//! templates) is rendered by the real `helm template` and then deploys,
//! diffs and tests like a minijinja chart. Needs helm (`STACK_HELM` or
//! `PATH`); skipped without it unless `STACK_REQUIRE_EXTERNAL` is set.

use std::path::{Path, PathBuf};

use crate::harness::{Server, Test, external_tool};

/// The example platform plus `shop/web`, the chart `helm create` makes,
/// with a value from the development secrets; helm is run through a
/// wrapper that logs its command line and its values file's mode and
/// contents to `helm.log`.
fn with_helm_chart(helm: &Path) -> Test {
    let test = Test::example().copy("tests/fixtures/helm/demo", "stacks/charts/demo");
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "releases:\n",
        "releases:\n  - name: web\n    namespace: shop\n    chart: charts/demo\n    labels: {tier: apps}\n    values:\n      - replicaCount: 2\n        podAnnotations: {db-password: \"{{ values.postgres.password }}\"}\n",
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    let wrapper = test.path().join("helm-wrapper.sh");
    let log = test.path().join("helm.log");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf 'argv: %s\\n' \"$*\" >> '{log}'\nfor a in \"$@\"; do case \"$a\" in */values.json) printf 'mode: %s\\nfolder mode: %s\\nvalues: ' \"$(stat -c %a \"$a\")\" \"$(stat -c %a \"$(dirname \"$a\")\")\" >> '{log}'; cat \"$a\" >> '{log}'; echo >> '{log}';; esac; done\nexec '{helm}' \"$@\"\n",
            log = log.display(),
            helm = helm.display()
        ),
    )
    .unwrap();
    make_executable(&wrapper);
    test.env("STACK_HELM", wrapper.to_str().unwrap())
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn helm() -> Option<PathBuf> {
    external_tool("STACK_HELM", "helm")
}

#[test]
fn a_local_helm_chart_deploys_diffs_and_tests_like_a_minijinja_chart() {
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm);
    let applied = test.stack(&["apply"]).success();
    assert!(
        applied
            .stdout
            .lines()
            .any(|line| line.starts_with("shop/web") && line.contains("deployed")),
        "{}",
        applied.stdout
    );
    let server = Server::start(test.path(), &[]);
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web-demo");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["metadata"]["labels"]["stack.dev/release"],
        "shop.web"
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["db-password"],
        "dev-s3cret-password",
        "the secret reaches the cluster"
    );
    assert_eq!(deployment["status"]["availableReplicas"], 2);
    let service = server.get("/api/v1/namespaces/shop/services/web-demo");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    drop(server);

    let diff = test.stack(&["diff", "--detailed-exitcode"]).code(0);
    assert_eq!(diff.stdout, "", "nothing changes after the apply");
    let tested = test.stack(&["test", "-l", "name=web"]).success();
    assert!(tested.stderr.contains("tests passed"), "{}", tested.stderr);
    let server = Server::start(test.path(), &[]);
    let pod = server.get("/api/v1/namespaces/shop/pods/web-demo-test-connection");
    assert_eq!(pod["status"]["phase"], "Succeeded", "the test hook ran");

    let template = test.stack(&["template", "-l", "name=web"]).success();
    assert!(template.stdout.contains("db-password: (sensitive value)"));

    let log = test.read("helm.log");
    let calls: Vec<&str> = log.lines().filter(|l| l.starts_with("argv: ")).collect();
    assert!(
        calls.iter().all(
            |call| call.starts_with("argv: template web ") && call.contains("--namespace shop")
        ),
        "{log}"
    );
    assert!(
        !calls.iter().any(|call| call.contains("s3cret")),
        "a secret on helm's command line: {log}"
    );
    assert!(log.lines().any(|l| l == "mode: 600"), "{log}");
    assert!(log.lines().any(|l| l == "folder mode: 700"), "{log}");
    assert_eq!(
        calls.len(),
        3,
        "an output holding a secret is rendered by helm every time (apply, diff, template), never cached: {log}"
    );
    for file in render_cache_files(&test) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("s3cret"),
            "{} holds a secret",
            file.display()
        );
    }
    assert!(
        log.lines()
            .any(|l| l.starts_with("values: ") && l.contains("dev-s3cret-password")),
        "the values reach helm in the file: {log}"
    );
}

#[test]
fn a_change_to_a_helm_release_shows_as_that_change() {
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm);
    test.stack(&["apply", "-q"]).success();
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "replicaCount: 2",
        "replicaCount: 3",
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    let diff = test
        .stack(&["diff", "--detailed-exitcode", "-l", "name=web"])
        .code(2);
    assert!(diff.stdout.contains("-  replicas: 2"), "{}", diff.stdout);
    assert!(diff.stdout.contains("+  replicas: 3"), "{}", diff.stdout);
}

#[test]
fn a_missing_helm_is_named_with_the_release_and_nothing_is_applied() {
    let test = with_web_release("").env("STACK_HELM", "/nonexistent/helm");
    let output = test.stack(&["apply"]).code(1);
    assert!(
        output
            .stderr
            .contains("release `shop/web`: cannot run helm (/nonexistent/helm)"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("STACK_HELM"), "{}", output.stderr);
    assert_nothing_deployed(&test);
}

#[test]
fn a_helm_template_error_shows_helms_message_with_the_release() {
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm).file(
        "stacks/charts/demo/templates/broken.yaml",
        "
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: broken
        data:
          deep: {{ .Values.missing.deeper.value }}
        ",
    );
    let output = test.stack(&["template", "-l", "name=web"]).code(1);
    assert!(
        output
            .stderr
            .contains("release `shop/web`: helm template failed:")
            && output.stderr.contains("demo/templates/broken.yaml:6")
            && output.stderr.contains("nil pointer"),
        "{}",
        output.stderr
    );
    assert_eq!(output.stdout, "");
}

/// A Job that is a helm hook at `events`, with more annotations.
fn hook_job(name: &str, events: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:\n    \"helm.sh/hook\": {events}\n{annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: {name}, image: busybox}}]\n"
    )
}

#[test]
fn helm_hooks_run_in_weight_order_at_their_steps() {
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm)
        .file(
            "stacks/charts/demo/templates/migrate.yaml",
            &hook_job("migrate", "pre-install,pre-upgrade", "    \"helm.sh/hook-weight\": \"1\"\n"),
        )
        .file(
            "stacks/charts/demo/templates/pre-config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pre-config\n  annotations:\n    \"helm.sh/hook\": pre-install,pre-upgrade\n    \"helm.sh/hook-weight\": \"-5\"\ndata: {a: b}\n",
        )
        .file(
            "stacks/charts/demo/templates/notify.yaml",
            &hook_job("notify", "post-install", "    \"helm.sh/hook-delete-policy\": hook-succeeded\n"),
        )
        .file(
            "stacks/charts/demo/templates/cleanup.yaml",
            &hook_job("cleanup", "pre-delete", ""),
        )
        .file(
            "stacks/charts/demo/templates/before-rollback.yaml",
            &hook_job("before-rollback", "pre-rollback", ""),
        )
        ;
    let applied = test.stack(&["apply", "-l", "name=web"]).success();
    let events = &applied.stderr;
    let at = |text: &str| {
        events
            .find(text)
            .unwrap_or_else(|| panic!("no `{text}` in:\n{events}"))
    };
    assert!(
        at("running pre-install hook ConfigMap/shop/pre-config")
            < at("running pre-install hook Job/shop/migrate")
    );
    assert!(
        at("running pre-install hook Job/shop/migrate") < at("waiting for Deployment/web-demo")
    );
    assert!(
        at("waiting for Deployment/web-demo") < at("running post-install hook Job/shop/notify")
    );
    assert!(!events.contains("hooks not run"), "{events}");
    let server = Server::start(test.path(), &[]);
    let migrate = server.get("/apis/batch/v1/namespaces/shop/jobs/migrate");
    assert_eq!(migrate["status"]["succeeded"], 1, "{migrate}");
    let notify = server.get("/apis/batch/v1/namespaces/shop/jobs/notify");
    assert_eq!(notify["code"], 404, "hook-succeeded removed it: {notify}");
    let cleanup = server.get("/apis/batch/v1/namespaces/shop/jobs/cleanup");
    assert_eq!(
        cleanup["code"], 404,
        "a pre-delete hook waits for destroy: {cleanup}"
    );
    drop(server);

    test.stack(&["diff", "--detailed-exitcode", "-l", "name=web"])
        .code(0);
    let template = test.stack(&["template", "-l", "name=web"]).success();
    assert!(
        template
            .stdout
            .contains("# Source: shop/web templates/migrate.yaml (hook)"),
        "{}",
        template.stdout
    );
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "replicaCount: 2",
        "replicaCount: 3",
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    let upgraded = test.stack(&["apply", "-l", "name=web"]).success();
    assert!(
        upgraded
            .stderr
            .contains("running pre-upgrade hook Job/shop/migrate"),
        "{}",
        upgraded.stderr
    );
    assert!(
        !upgraded.stderr.contains("running post-install"),
        "{}",
        upgraded.stderr
    );

    let rolled_back = test.stack(&["rollback", "shop/web"]).success();
    assert!(
        rolled_back
            .stderr
            .contains("running pre-rollback hook Job/shop/before-rollback"),
        "{}",
        rolled_back.stderr
    );
    let destroyed = test.stack(&["destroy", "-l", "name=web"]).success();
    assert!(
        destroyed
            .stderr
            .contains("running pre-delete hook Job/shop/cleanup"),
        "{}",
        destroyed.stderr
    );
    let server = Server::start(test.path(), &[]);
    let ran = |name: &str| {
        server.get(&format!("/apis/batch/v1/namespaces/shop/jobs/{name}"))["status"]["succeeded"]
            .clone()
    };
    assert_eq!(ran("before-rollback"), 1, "the pre-rollback hook ran");
    assert_eq!(ran("cleanup"), 1, "the pre-delete hook ran");
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web-demo");
    assert_eq!(deployment["code"], 404, "destroyed: {deployment}");
}

#[test]
fn a_failed_helm_hook_fails_the_release_and_rolls_it_back() {
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm).file(
        "stacks/charts/demo/templates/migrate.yaml",
        &hook_job(
            "migrate",
            "pre-install",
            "    sim.stack.dev/fail: job-failed\n",
        ),
    );
    let output = test.stack(&["apply", "-l", "name=web"]).code(3);
    assert!(
        output.stderr.contains("hook Job/shop/migrate failed"),
        "{}",
        output.stderr
    );
    let server = Server::start(test.path(), &[]);
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web-demo");
    assert_eq!(
        deployment["code"], 404,
        "the failed first install was removed: {deployment}"
    );
}

/// A chart repository on 127.0.0.1 serving the files of a folder, counting
/// the requests it answers; it stops when dropped.
struct ChartRepository {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ChartRepository {
    /// `helm package` the demo chart into `dir`, index it, and serve it.
    fn start(helm: &Path, dir: &Path) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::fs::create_dir_all(dir).unwrap();
        let chart = crate::harness::repository().join("tests/fixtures/helm/demo");
        let run = |args: &[&str]| {
            let output = std::process::Command::new(helm)
                .args(args)
                .env("HOME", dir)
                .output()
                .unwrap();
            assert!(output.status.success(), "helm {args:?}: {output:?}");
        };
        run(&[
            "package",
            chart.to_str().unwrap(),
            "-d",
            dir.to_str().unwrap(),
        ]);
        run(&["repo", "index", dir.to_str().unwrap(), "--url", &url]);
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (served, stopped, root) = (requests.clone(), stop.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    serve_file(stream, &root);
                }
            }
        });
        Self {
            url,
            requests,
            stop,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ChartRepository {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Answer one GET with the file it names under `root` (404 otherwise).
fn serve_file(mut stream: std::net::TcpStream, root: &Path) {
    use std::io::{BufRead as _, Write as _};
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    let _ = reader.read_line(&mut request);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let file = root.join(path.trim_start_matches('/'));
    let (status, body) = match std::fs::read(&file) {
        Ok(body) if !path.contains("..") => ("200 OK", body),
        _ => ("404 Not Found", Vec::new()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

/// The example platform with `shop/web` from the chart repository `local`.
fn with_repository_chart(helm: &Path, repository: &ChartRepository, version: &str) -> Test {
    let test = Test::example().env("STACK_HELM", helm.to_str().unwrap());
    let stack_file = test.path().join("stacks/platform.yaml");
    let release = format!(
        "repositories:\n  - name: local\n    url: {}\n\nreleases:\n  - name: web\n    namespace: shop\n    chart: local/demo\n{version}",
        repository.url
    );
    let platform =
        std::fs::read_to_string(&stack_file)
            .unwrap()
            .replacen("releases:\n", &release, 1);
    std::fs::write(&stack_file, platform).unwrap();
    test
}

/// The cached archive of a pulled chart.
fn cached_archive(test: &Test) -> PathBuf {
    crate::harness::files_under(test.path())
        .into_iter()
        .find(|path| {
            path.ends_with("chart.tgz") && path.to_string_lossy().contains("/stacks/.stack/charts/")
        })
        .expect("a cached chart archive")
}

#[test]
fn a_repository_chart_is_pulled_once_verified_and_deployed() {
    let Some(helm) = helm() else { return };
    let served = tempfile::tempdir().unwrap();
    let repository = ChartRepository::start(&helm, served.path());
    let test = with_repository_chart(&helm, &repository, "    version: 0.1.0\n");
    test.stack(&["apply"]).success();
    let server = Server::start(test.path(), &[]);
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web-demo");
    assert_eq!(deployment["status"]["availableReplicas"], 1);
    drop(server);
    let archive = cached_archive(&test);
    let digest = std::fs::read_to_string(archive.with_file_name("chart.tgz.sha256")).unwrap();
    assert_eq!(digest.trim().len(), 64, "a SHA-256 digest: {digest}");

    let pulls = repository.requests();
    assert!(
        pulls >= 2,
        "the index and the archive were fetched: {pulls}"
    );
    test.stack(&["diff", "--detailed-exitcode"]).code(0);
    assert_eq!(
        repository.requests(),
        pulls,
        "a cached chart is not fetched again"
    );

    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let tampered = test.stack(&["diff"]).code(1);
    assert!(
        tampered
            .stderr
            .contains("does not match the digest recorded when it was pulled")
            && tampered.stderr.contains("stack charts update"),
        "{}",
        tampered.stderr
    );
    let updated = test.stack(&["charts", "update"]).success();
    assert!(
        updated.stdout.contains("0.1.0")
            && updated
                .stdout
                .contains(&format!("sha256:{}", digest.trim())),
        "{}",
        updated.stdout
    );
    assert!(repository.requests() > pulls, "pulled again");
    test.stack(&["diff", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_repository_chart_without_version_or_repository_is_a_located_error() {
    let Some(helm) = helm() else { return };
    let served = tempfile::tempdir().unwrap();
    let repository = ChartRepository::start(&helm, served.path());
    let test = with_repository_chart(&helm, &repository, "");
    let output = test.stack(&["template"]).code(1);
    assert!(
        output
            .stderr
            .contains("chart `local/demo` comes from a repository: it needs `version`")
            && output.stderr.contains("platform.yaml:"),
        "{}",
        output.stderr
    );
    let unknown = test.path().join("stacks/platform.yaml");
    let text = std::fs::read_to_string(&unknown).unwrap().replacen(
        "chart: local/demo",
        "chart: elsewhere/demo",
        1,
    );
    std::fs::write(&unknown, text).unwrap();
    let output = test.stack(&["template"]).code(1);
    assert!(
        output
            .stderr
            .contains("chart `elsewhere/demo`: no folder, and no repository `elsewhere`")
            && output.stderr.contains("repositories: local"),
        "{}",
        output.stderr
    );
    assert_eq!(repository.requests(), 0, "nothing was fetched");
}

/// The files of the Helm render cache.
fn render_cache_files(test: &Test) -> Vec<PathBuf> {
    crate::harness::files_under(test.path())
        .into_iter()
        .filter(|path| {
            path.to_string_lossy()
                .contains("/stacks/.stack/render-cache/")
        })
        .collect()
}

fn helm_calls(test: &Test) -> usize {
    std::fs::read_to_string(test.path().join("helm.log"))
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("argv: template"))
        .count()
}

#[test]
fn a_second_diff_of_an_unchanged_helm_release_runs_no_helm() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(helm) = helm() else { return };
    let test = with_helm_chart(&helm);
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "podAnnotations: {db-password: \"{{ values.postgres.password }}\"}",
        "podAnnotations: {team: shop}",
        1,
    );
    std::fs::write(&stack_file, &platform).unwrap();
    let first = test.stack(&["diff", "-l", "name=web"]).code(0);
    assert_eq!(helm_calls(&test), 1);
    let second = test.stack(&["diff", "-l", "name=web"]).code(0);
    assert_eq!(helm_calls(&test), 1, "the second diff ran no helm");
    assert_eq!(first.stdout, second.stdout, "the cached render is the same");
    let files = render_cache_files(&test);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    std::fs::write(
        &stack_file,
        platform.replacen("replicaCount: 2", "replicaCount: 3", 1),
    )
    .unwrap();
    let changed = test.stack(&["diff", "-l", "name=web"]).code(0);
    assert_eq!(helm_calls(&test), 2, "changed values render again");
    assert!(changed.stdout.contains("replicas: 3"), "{}", changed.stdout);
    std::fs::write(
        test.path().join("stacks/charts/demo/templates/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    )
    .unwrap();
    let chart_changed = test.stack(&["diff", "-l", "name=web"]).code(0);
    assert_eq!(helm_calls(&test), 3, "a changed chart renders again");
    assert!(
        chart_changed.stdout.contains("ConfigMap/shop/extra"),
        "{}",
        chart_changed.stdout
    );

    // A rotated secret (its encrypted file changed) renders again, though
    // the cache key never holds the secret itself.
    let secrets = "secrets/development/db.yaml";
    test.stack(&[
        "secrets",
        "decrypt",
        "--in-place",
        secrets,
        "--age-key-file",
        "secrets/demo-age-key.txt",
    ])
    .success();
    let plain = test
        .read(secrets)
        .replace("dev-s3cret-password", "dev-r0tated-password");
    std::fs::write(test.path().join(secrets), plain).unwrap();
    test.stack(&["secrets", "encrypt", "--in-place", secrets])
        .success();
    test.stack(&["diff", "-l", "name=web"]).code(0);
    assert_eq!(helm_calls(&test), 4, "a rotated secret renders again");
    for file in render_cache_files(&test) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("r0tated"),
            "{}",
            file.display()
        );
    }
}

/// A stand-in for helm: a shell script with `body`.
fn fake_helm(test: &Test, body: &str) -> PathBuf {
    let path = test.path().join("fake-helm.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    make_executable(&path);
    path
}

/// The example platform plus `shop/web` from the local Helm chart, with
/// `extra` added to the release.
fn with_web_release(extra: &str) -> Test {
    let test = Test::example().copy("tests/fixtures/helm/demo", "stacks/charts/demo");
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "releases:\n",
        &format!("releases:\n  - name: web\n    namespace: shop\n    chart: charts/demo\n{extra}"),
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    test
}

#[test]
fn a_helm_that_hangs_is_stopped_at_the_release_timeout_and_nothing_is_applied() {
    let test = with_web_release("    timeout: 2s\n");
    let pid_file = test.path().join("helm.pid");
    let helm = fake_helm(
        &test,
        &format!("echo $$ > '{}'\nexec sleep 600", pid_file.display()),
    );
    let test = test.env("STACK_HELM", helm.to_str().unwrap());
    let output = test.stack(&["apply"]).code(1);
    assert!(
        output.stderr.contains(
            "release `shop/web`: helm template failed: helm did not finish within the release's timeout (2s): stopped"
        ),
        "{}",
        output.stderr
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"),
        "helm was killed: {stat}"
    );
    assert_nothing_deployed(&test);
}

#[test]
fn a_helm_that_fails_is_named_with_its_message_and_nothing_is_applied() {
    let test = with_web_release("");
    let helm = fake_helm(
        &test,
        "echo 'Error: chart requires kubeVersion: >=1.99.0' >&2\nexit 1",
    );
    let test = test.env("STACK_HELM", helm.to_str().unwrap());
    let output = test.stack(&["apply"]).code(1);
    assert!(
        output.stderr.contains(
            "release `shop/web`: helm template failed: chart requires kubeVersion: >=1.99.0"
        ),
        "{}",
        output.stderr
    );
    assert_nothing_deployed(&test);
}

/// No release of the stack has a revision in the cluster.
fn assert_nothing_deployed(test: &Test) {
    let status = test.stack(&["status", "-o", "json"]).success().json();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|release| release["revision"].is_null() || release["revision"] == 0),
        "nothing was deployed: {status}"
    );
}

/// The example platform plus `widgets` (a CRD for `stack.test/v1` Widgets)
/// and `shop/caps`, a Helm chart whose ConfigMap tells what
/// `.Capabilities` it was rendered with.
fn with_capabilities_chart(helm: &Path) -> Test {
    let test = Test::example()
        .env("STACK_HELM", helm.to_str().unwrap())
        .file(
            "stacks/charts/caps/Chart.yaml",
            "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
        )
        .file(
            "stacks/charts/caps/templates/caps.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caps\ndata:\n  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n  widgets: {{ .Capabilities.APIVersions.Has \"stack.test/v1/Widget\" | quote }}\n",
        )
        .file(
            "stacks/charts/widgets/templates/crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.stack.test}\nspec:\n  group: stack.test\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
        );
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "releases:\n",
        "releases:\n  - name: widgets\n    namespace: shop\n    chart: charts/widgets\n  - name: caps\n    namespace: shop\n    chart: charts/caps\n",
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    test
}

/// The data of the `caps` ConfigMap in a rendered stream.
fn rendered_capabilities(template: &str) -> (String, String) {
    let field = |name: &str| {
        template
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{template}"))
            .trim_matches(['"', '\''])
            .to_string()
    };
    (field("kubeVersion"), field("widgets"))
}

#[test]
fn a_helm_chart_renders_for_the_version_and_apis_of_the_cluster_it_deploys_to() {
    let Some(helm) = helm() else { return };
    let test = with_capabilities_chart(&helm);
    let defaults = test.stack(&["template", "-l", "name=caps"]).success();
    let (default_version, widgets) = rendered_capabilities(&defaults.stdout);
    assert_eq!(widgets, "false");
    let given = test
        .stack(&[
            "template",
            "-l",
            "name=caps",
            "--kube-version",
            "v1.31.4",
            "--api-versions",
            "stack.test/v1/Widget",
        ])
        .success();
    assert_eq!(
        rendered_capabilities(&given.stdout),
        ("v1.31.4".to_string(), "true".to_string())
    );

    test.stack(&["apply", "-q", "-l", "name=widgets"]).success();
    test.stack(&["apply", "-q", "-l", "name=caps"]).success();
    let server = Server::start(test.path(), &[]);
    let live = server.get("/api/v1/namespaces/shop/configmaps/caps");
    let version = server.get("/version");
    assert_eq!(
        live["data"]["kubeVersion"], version["gitVersion"],
        "rendered for the cluster's version, not helm's default {default_version}"
    );
    assert_eq!(
        live["data"]["widgets"], "true",
        "the cluster serves stack.test/v1 Widgets"
    );
    drop(server);
    let diff = test
        .stack(&["diff", "--detailed-exitcode", "-l", "name=caps"])
        .code(0);
    assert_eq!(diff.stdout, "", "diff renders for the cluster too");
}

#[test]
fn a_chart_with_crds_a_subchart_helpers_tpl_and_lookup_deploys_crds_first() {
    let Some(helm) = helm() else { return };
    let test = Test::example()
        .copy("tests/fixtures/helm/features", "stacks/charts/features")
        .env("STACK_HELM", helm.to_str().unwrap());
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "releases:\n",
        "releases:\n  - name: web\n    namespace: shop\n    chart: charts/features\n    values:\n      - size: 5\n        cache: {port: 6380}\n",
        1,
    );
    std::fs::write(&stack_file, platform).unwrap();
    test.stack(&["apply", "-q", "-l", "name=web"]).success();
    let server = Server::start(test.path(), &[]);
    let crd =
        server.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.features.test");
    assert_eq!(crd["spec"]["group"], "features.test");
    let widget = server.get("/apis/features.test/v1/namespaces/shop/widgets/web-features");
    assert_eq!(
        widget["spec"]["size"], 5,
        "the custom resource of the chart's own CRD, applied after it"
    );
    assert_eq!(
        widget["metadata"]["labels"]["app.kubernetes.io/instance"],
        "web"
    );
    let config = server.get("/api/v1/namespaces/shop/configmaps/web-features");
    assert_eq!(config["data"]["greeting"], "hello from web", "tpl");
    assert_eq!(config["data"]["seenBefore"], "no", "lookup finds nothing");
    let cache = server.get("/api/v1/namespaces/shop/configmaps/web-cache");
    assert_eq!(
        cache["data"]["port"], "6380",
        "the subchart's values from the release"
    );
    drop(server);
    let diff = test
        .stack(&["diff", "--detailed-exitcode", "-l", "name=web"])
        .code(0);
    assert_eq!(diff.stdout, "");
}
