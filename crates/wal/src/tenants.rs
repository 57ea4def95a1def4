//! The per-tenant engines of one directory (`<root>/<tenant>/`): found on start, created on
//! first use. Shared by the trace and log engines.

use periscope_model::TenantId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Engines by tenant.
pub struct TenantMap<D>(RwLock<HashMap<TenantId, Arc<D>>>);

impl<D> Default for TenantMap<D> {
    fn default() -> Self {
        TenantMap(RwLock::new(HashMap::new()))
    }
}

impl<D> TenantMap<D> {
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<D>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(tenant).cloned()
    }

    /// The tenant's engine, opened by `open` when it has none yet (once, however many
    /// callers race).
    pub fn get_or_try_insert<E>(&self, tenant: &TenantId, open: impl FnOnce() -> Result<D, E>) -> Result<Arc<D>, E> {
        if let Some(d) = self.get(tenant) {
            return Ok(d);
        }
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = map.get(tenant) {
            return Ok(d.clone());
        }
        let d = Arc::new(open()?);
        map.insert(tenant.clone(), d.clone());
        Ok(d)
    }

    pub fn insert(&self, tenant: TenantId, d: D) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(tenant, Arc::new(d));
    }

    /// Every tenant's engine.
    pub fn all(&self) -> Vec<(TenantId, Arc<D>)> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(t, d)| (t.clone(), d.clone())).collect()
    }
}

/// The tenant directories under `root` (created if missing); entries whose names are not
/// tenant ids are skipped.
pub fn tenant_dirs(root: &Path) -> std::io::Result<Vec<(TenantId, PathBuf)>> {
    std::fs::create_dir_all(root)?;
    let mut out = Vec::new();
    for e in std::fs::read_dir(root)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Ok(tenant) = TenantId::new(&name) {
            if e.path().is_dir() {
                out.push((tenant, e.path()));
            }
        }
    }
    Ok(out)
}
