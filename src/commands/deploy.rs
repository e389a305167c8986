//! `stack server` (the deploy API, in `stack-server`) and `stack deploy`,
//! its client: a signed request, the status URL, and with `--wait` the
//! events followed to the deployment's end, whose result is the exit code.

use serde_json::{Value, json};

use crate::cli::{DeployArgs, ServerArgs};
use crate::output;
use crate::settings::Settings;
use stack_core::error::{EXIT_ERROR, EXIT_ROLLED_BACK, Error, Errors};

pub fn serve(settings: &Settings, args: &ServerArgs) -> Result<u8, Errors> {
    let options = stack_server::ServerOptions {
        listen: args.listen,
        teams: args.teams.clone(),
        load: settings.load.clone(),
        connection: stack_core::execute::run::Connection {
            kubeconfig: settings.kubeconfig.clone(),
            kube_context: settings.kube_context.clone(),
        },
        lock_wait: args.lock_wait,
        body_limit: 1 << 20,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(stack_server::serve(options, |url| {
        output::stdout(&format!("stack server listening on {url}\n"));
    }))?;
    Ok(0)
}

fn failed(message: String) -> Error {
    Error::Failed {
        message,
        hint: None,
    }
}

/// What git says of the working directory: `git ARGS`, trimmed.
fn git(args: &[&str]) -> Option<String> {
    stack_core::load::project::git(std::path::Path::new("."), args)
}

/// The request's body: what `-e`, `-l` and `--set` say, and where from.
fn body(settings: &Settings, args: &DeployArgs) -> Value {
    let set: serde_json::Map<String, Value> = settings
        .load
        .sets
        .iter()
        .map(|s| (s.path_text(), s.value.clone()))
        .collect();
    let mut body = json!({
        "team": args.team,
        "environment": settings.load.environment.clone().unwrap_or_else(|| "default".into()),
        "repository": args.repository.clone().or_else(|| git(&["config", "--get", "remote.origin.url"])).unwrap_or_else(|| "unknown".into()),
        "ref": args.git_ref.clone().or_else(|| git(&["rev-parse", "HEAD"])).unwrap_or_else(|| "unknown".into()),
        "timestamp": stack_kube::clock::now(),
        "set": set,
    });
    if let Some(selector) = settings.load.selectors.first() {
        body["selector"] = selector.to_string().into();
    }
    body
}

pub fn deploy(settings: &Settings, args: &DeployArgs) -> Result<u8, Errors> {
    let key = std::fs::read_to_string(&args.key_file).map_err(|e| {
        failed(format!(
            "cannot read the key file {}: {e}",
            args.key_file.display()
        ))
    })?;
    let body = body(settings, args).to_string().into_bytes();
    let signature = stack_server::signature(key.trim().as_bytes(), &body);
    let server = args.server.trim_end_matches('/').to_string();
    let runtime = super::runtime()?;
    let http = runtime
        .block_on(async { stack_server::client::Http::new(args.ca_cert.as_deref()) })
        .map_err(failed)?;
    let (code, answer) = runtime
        .block_on(http.post(
            &format!("{server}/api/v1/deploy"),
            &[("x-stack-signature", &signature)],
            body,
        ))
        .map_err(failed)?;
    let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    if code != 201 {
        return Err(Error::Failed {
            message: format!(
                "the server refused the deployment ({code}): {}",
                answer["message"].as_str().unwrap_or("no reason given")
            ),
            hint: answer["field"]
                .as_str()
                .map(|f| format!("the field `{f}` of the request")),
        }
        .into());
    }
    output::stdout(&format!(
        "{}\n",
        answer["statusURL"].as_str().unwrap_or_default()
    ));
    if !args.wait {
        return Ok(0);
    }
    let events = answer["eventsURL"].as_str().unwrap_or_default().to_string();
    let mut last = String::new();
    let mut code = None;
    runtime
        .block_on(http.get_lines(&events, |line| {
            let Some(data) = line.strip_prefix("data:") else {
                return true;
            };
            let event: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
            output::progress(&event_line(&event), settings.quiet);
            if event["event"] == "status" {
                last = event["status"].as_str().unwrap_or_default().to_string();
                code = event["exitCode"]
                    .as_u64()
                    .and_then(|c| u8::try_from(c).ok());
            }
            !matches!(last.as_str(), "success" | "failure" | "error")
        }))
        .map_err(failed)?;
    Ok(match (last.as_str(), code) {
        (_, Some(code)) => code,
        ("success", None) => 0,
        ("failure", None) => EXIT_ROLLED_BACK,
        _ => EXIT_ERROR,
    })
}

/// An event as a line: `[apps/web] waiting for Deployment/web: 0/1 ready`,
/// `status: success`.
fn event_line(event: &Value) -> String {
    let text = match (&event["message"], &event["status"]) {
        (Value::String(message), _) => message.clone(),
        (_, Value::String(status)) => match event["reason"].as_str() {
            Some(reason) => format!("status: {status}\n{reason}"),
            None => format!("status: {status}"),
        },
        _ => event["event"].as_str().unwrap_or("event").replace('_', " "),
    };
    match event["release"].as_str().filter(|r| !r.is_empty()) {
        Some(release) => format!("[{release}] {text}"),
        None => text,
    }
}
