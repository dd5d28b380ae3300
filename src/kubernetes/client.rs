//! The API client: the in-cluster service account, or a kubeconfig file.

use std::path::Path;

/// A client for the cluster: `kubeconfig` when given, else the in-cluster
/// service account (`KUBERNETES_SERVICE_HOST` and the mounted token).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::incluster()
            .map_err(|e| format!("not running in a cluster ({e}); give --kubeconfig FILE"))?,
    };
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}
