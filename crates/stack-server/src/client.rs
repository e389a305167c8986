//! The few HTTP requests the server and `stack deploy` make: a signed
//! POST (a deploy request, a status callback) and a GET read line by
//! line (an event stream), over HTTP or HTTPS (the system's roots, and a
//! CA file when given), on hyper's client.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP(S) client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// A client that trusts the system's roots, and the certificates in
    /// `ca` (PEM) when given.
    pub fn new(ca: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_roots();
        roots.add_parsable_certificates(native);
        if let Some(ca) = ca {
            for certificate in crate::tls::certificates(ca)? {
                roots
                    .add(certificate)
                    .map_err(|e| format!("{}: not a CA certificate: {e}", ca.display()))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Send a request to `url`; its response.
    async fn send(
        &self,
        url: &str,
        request: hyper::http::request::Builder,
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot make the request to {url}: {e}"))?;
        self.client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach {url}: {}", chain(&e)))
    }

    /// POST a JSON body with these headers: the status and the answer's body.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        let mut request = hyper::Request::post(url).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.send(url, request, body).await?;
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
    pub async fn get_lines(
        &self,
        url: &str,
        mut line: impl FnMut(&str) -> bool,
    ) -> Result<u16, String> {
        let request = hyper::Request::get(url).header("accept", "text/event-stream");
        let response = self.send(url, request, Vec::new()).await?;
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
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The system's trusted roots (those that can be read).
fn rustls_native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}
