//! Private files and folders: the workdir is 0700 and everything in it 0600, because dumps,
//! reports and scripts can hold personal data. Only std::fs, so the same code serves Windows.

use anyhow::Context;
use std::path::Path;

/// Create `dir` and every missing parent, each private to this user (0700). A folder that
/// already exists is left as it is: rehearse never changes the mode of a folder it did not
/// create (the workdir's own rules are in `crate::workdir`).
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
        if fs_err::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p);
        at = p.parent();
    }
    for p in missing.into_iter().rev() {
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(p) {
            Ok(()) => make_private_dir(p)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot create folder {}: check the path and its permissions", p.display())
                })
            }
        }
    }
    if !dir.is_dir() {
        anyhow::bail!("cannot use {} as a folder: it exists and is not a folder", dir.display());
    }
    Ok(())
}

/// Make a folder rehearse created (or one inside such a folder) private: 0700.
pub fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
    }
    let _ = dir;
    Ok(())
}

pub fn private_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (0600)", path.display()))?;
    }
    let _ = path;
    Ok(())
}

/// Write a file through a temporary name and rename it into place, private from the start.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    // A full disk fails here: name the file, not only the OS's words.
    std::io::Write::write_all(&mut tmp, contents).with_context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file().sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    private_file(path)
}
