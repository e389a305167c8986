//! Faults on a real control plane: a kubeconfig that is wrong in each of
//! the usual ways, and kube-apiserver or etcd going away in the middle of
//! an apply (killed with SIGKILL by `scripts/real-cluster`).

use base64::Engine as _;

use crate::atomic::Seen;
use crate::faults::start_slow_apply;
use crate::harness::Test;
use crate::harness::real::{CONTEXT, RealCluster};

/// The example's kubeconfig with `from` (which must be there) replaced,
/// written into the test's folder; its path.
fn kubeconfig_with(cluster: &RealCluster, test: &Test, from: &str, to: &str) -> String {
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).expect("read the kubeconfig");
    assert!(
        kubeconfig.contains(from),
        "{from:?} is not in the kubeconfig"
    );
    let path = test.path().join(format!("{}.kubeconfig", to.len()));
    std::fs::write(&path, kubeconfig.replacen(from, to, 1)).expect("write the kubeconfig");
    path.to_str().expect("UTF-8").to_string()
}

/// The value of `key: ` in the kubeconfig.
fn kubeconfig_value(cluster: &RealCluster, key: &str) -> String {
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).expect("read the kubeconfig");
    kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .expect("the key in the kubeconfig")
        .to_string()
}

/// A CA certificate no server here was signed by, base64 as a kubeconfig
/// holds it.
fn another_ca(dir: &std::path::Path) -> String {
    let certificate = dir.join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=other-ca",
        ])
        .args(["-days", "1", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
    base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(certificate).expect("read the certificate"))
}

#[test]
fn kubeconfig_mistakes_are_named_with_what_to_check_and_nothing_is_written() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example();
    let server = cluster.server();
    let at = format!("context `{CONTEXT}` at {server}: ");

    let token = kubeconfig_value(&cluster, "token: ");
    let wrong_token = kubeconfig_with(&cluster, &test, &token, "not-the-token");
    let refused = seen.keep(
        test.stack(&["apply", "-q", "--kubeconfig", &wrong_token])
            .code(1),
    );
    assert!(
        refused.stderr.contains(&format!(
            "{at}the credentials were refused (401 Unauthorized)"
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("its token"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains(&token),
        "the real token is never shown"
    );

    let ca = kubeconfig_value(&cluster, "certificate-authority-data: ");
    let other = another_ca(test.path());
    let wrong_ca = kubeconfig_with(&cluster, &test, &ca, &other);
    let untrusted = seen.keep(test.stack(&["diff", "--kubeconfig", &wrong_ca]).code(1));
    assert!(
        untrusted
            .stderr
            .contains(&format!("{at}the server's certificate is not trusted")),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("certificate-authority-data"),
        "{}",
        untrusted.stderr
    );

    let missing = seen.keep(
        test.stack(&["diff", "--kube-context", "stack-rael"])
            .code(1),
    );
    assert!(
        missing.stderr.contains("stack-rael"),
        "names the context: {}",
        missing.stderr
    );

    // Nothing listens on a port just given back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let down = kubeconfig_with(
        &cluster,
        &test,
        &server,
        &format!("https://127.0.0.1:{port}"),
    );
    let unreachable = seen.keep(test.stack(&["apply", "-q", "--kubeconfig", &down]).code(1));
    assert!(
        unreachable.stderr.contains(&format!(
            "context `{CONTEXT}` at https://127.0.0.1:{port}: nothing answers"
        )),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable.stderr.contains("is the cluster up"),
        "{}",
        unreachable.stderr
    );

    // None of them wrote anything.
    assert_eq!(cluster.writes_by_stack(), 0);
    assert!(cluster.get("namespace", "", "apps").is_none());
}

/// An apply waiting for a slow rollout while `component` is killed and
/// started again rides it out: the run succeeds, the release is deployed,
/// and the next diff is empty.
fn restart_mid_apply(component: &str) {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut child, mut stderr, rest) = start_slow_apply(&test, 8);
    cluster.component(&format!("kill-{component}"));
    cluster.component(&format!("restart-{component}"));
    stderr.extend(rest.map(|line| line + "\n"));
    let status = child.wait().expect("wait for apply");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("[apps/backend] deployed revision 2"),
        "{stderr}"
    );
    seen.keep(crate::harness::Output {
        code: 0,
        stdout: String::new(),
        stderr,
    });
    let backend = cluster
        .get("deployment", "apps", "backend")
        .expect("backend");
    assert_eq!(
        backend["spec"]["template"]["metadata"]["annotations"]["sim.stack.dev/rollout-seconds"],
        "8"
    );
    seen.keep(
        test.stack(&[
            "diff",
            "--detailed-exitcode",
            "--set",
            &crate::faults::slow_rollout(8),
        ])
        .code(0),
    );
}

#[test]
fn an_api_server_killed_and_restarted_mid_apply_is_ridden_out() {
    restart_mid_apply("apiserver");
}

#[test]
fn etcd_killed_and_restarted_mid_apply_is_ridden_out() {
    restart_mid_apply("etcd");
}

#[test]
fn an_api_server_that_stays_away_is_named_and_the_next_apply_recovers() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example();
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut child, mut stderr, rest) = start_slow_apply(&test, 8);
    cluster.component("kill-apiserver");
    stderr.extend(rest.map(|line| line + "\n"));
    let status = child.wait().expect("wait for apply");
    seen.keep(crate::harness::Output {
        code: 1,
        stdout: String::new(),
        stderr: stderr.clone(),
    });
    assert_eq!(status.code(), Some(1), "{stderr}");
    let server = cluster.server();
    assert!(stderr.contains(&server), "names the server: {stderr}");
    assert!(
        stderr.contains("apps/backend") && stderr.contains("pending"),
        "says what was left: {stderr}"
    );
    cluster.component("restart-apiserver");
    let recovered = seen.keep(
        test.stack(&["apply", "--set", &crate::faults::slow_rollout(8)])
            .success(),
    );
    crate::faults::recovers_pending(&recovered);
    seen.keep(test.stack(&["status", "--check"]).success());
}
