//! What a request asks, parsed from its path and query: the resource path
//! it names ([`Route`]), its query parameters ([`Query`]), and for a write,
//! who writes where ([`Request`]).

use std::collections::HashMap;

use crate::resources::ResourceType;

/// Who writes, where, and how.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub resource: &'a ResourceType,
    /// Empty for cluster-scoped resources.
    pub namespace: &'a str,
    pub name: &'a str,
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub dry_run: bool,
}

/// Query parameters, percent-decoded.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(key), decode(value));
        }
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a resource path names.
pub enum Route {
    Collection {
        resource: ResourceType,
        /// `None`: all namespaces (or a cluster-scoped resource).
        namespace: Option<String>,
    },
    Object {
        resource: ResourceType,
        namespace: String,
        name: String,
        subresource: Option<String>,
    },
}
