//! The few HTTP requests the server and `stack deploy` make: a signed
//! POST (a deploy request, a status callback) and a GET read line by
//! line (an event stream). Plain HTTP on hyper's client.

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Send a request to `url`; its response.
async fn send(
    url: &str,
    request: hyper::http::request::Builder,
    body: Vec<u8>,
) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot make the request to {url}: {e}"))?;
    client()
        .request(request)
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))
}

/// POST a JSON body with these headers: the status and the answer's body.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let mut request = hyper::Request::post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = send(url, request, body).await?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("cannot read the answer of {url}: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GET `url` and hand each line of its body to `line` as it arrives,
/// until the body ends or `line` says stop (`false`).
pub async fn get_lines(url: &str, mut line: impl FnMut(&str) -> bool) -> Result<u16, String> {
    let request = hyper::Request::get(url).header("accept", "text/event-stream");
    let response = send(url, request, Vec::new()).await?;
    let status = response.status().as_u16();
    let mut body = response.into_body().into_data_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("the stream of {url} broke: {e}"))?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let text: String = buffer.drain(..=end).collect();
            if !line(text.trim_end()) {
                return Ok(status);
            }
        }
    }
    Ok(status)
}
