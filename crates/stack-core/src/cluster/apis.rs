//! Every typed handle on the API server that code above the seam uses,
//! built here: the engine asks for the pods of a namespace, not for a
//! `kube::Api` of its own making.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};

/// Namespaces.
pub fn namespaces(client: &Client) -> Api<Namespace> {
    Api::all(client.clone())
}

/// Namespaces as dynamic objects (waited for until they are gone).
pub(crate) fn namespaces_erased(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<Namespace>(&()))
}

/// Secrets of one namespace (revisions).
pub fn secrets(client: &Client, namespace: &str) -> Api<Secret> {
    Api::namespaced(client.clone(), namespace)
}

/// Secrets of every namespace (the history of every release at once).
pub(crate) fn all_secrets(client: &Client) -> Api<Secret> {
    Api::all(client.clone())
}

/// ServiceAccounts of one namespace (the `default` one gets the
/// environment's pull secret).
pub fn service_accounts(client: &Client, namespace: &str) -> Api<ServiceAccount> {
    Api::namespaced(client.clone(), namespace)
}

/// Pods of one namespace (diagnosis, test logs).
pub fn pods(client: &Client, namespace: &str) -> Api<Pod> {
    Api::namespaced(client.clone(), namespace)
}

/// Events of one namespace (diagnosis).
pub fn events(client: &Client, namespace: &str) -> Api<Event> {
    Api::namespaced(client.clone(), namespace)
}

/// Leases of one namespace (the run lock).
pub fn leases(client: &Client, namespace: &str) -> Api<Lease> {
    Api::namespaced(client.clone(), namespace)
}

/// ConfigMaps of one namespace (the records of deployment groups).
pub fn config_maps(client: &Client, namespace: &str) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), namespace)
}

/// Objects of any kind in one namespace, by their resource.
pub fn dynamic(client: &Client, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, resource)
}

/// Objects of a built-in kind as dynamic objects (pods and replica sets
/// followed by the shared watches).
pub(crate) fn erased<K>(client: &Client, namespace: &str) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    dynamic(client, namespace, &ApiResource::erase::<K>(&()))
}
