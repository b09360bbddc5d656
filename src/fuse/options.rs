//! Parsing `-o` option strings as mount(8), fstab and systemd pass them, into what the mount
//! does. Pure, so every accepted and refused option is tested here.

/// What a set of `-o` strings asks for. Options that only matter to mount(8) or systemd are
/// accepted and ignored; the security options (`ro`, `nosuid`, `nodev`,
/// `default_permissions`) are always on and cannot be turned off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedOptions {
    pub allow_other: bool,
    pub allow_root: bool,
    pub noexec: bool,
    /// Mount over a folder that has files (hidden while mounted).
    pub nonempty: bool,
    pub fsname: Option<String>,
    /// Show no extended attributes: the first getxattr/listxattr answers ENOSYS, and the
    /// kernel stops asking for the rest of the mount (`ls -l` asks two per file).
    pub noxattr: bool,
    pub cache_mib: Option<usize>,
    pub threads: Option<usize>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("mount option {0:?}: read-only filesystem")]
    ReadOnly(String),
    #[error("mount option {0:?} is not supported (the mount is always nosuid,nodev)")]
    Unsafe(String),
    #[error("mount option {0:?}: not a number")]
    NotANumber(String),
    #[error("unknown mount option {0:?}")]
    Unknown(String),
}

/// Parses comma-separated option strings (`["ro,allow_other", "_netdev"]`).
pub fn parse_options<S: AsRef<str>>(strings: &[S]) -> Result<ParsedOptions, OptionError> {
    let mut p = ParsedOptions::default();
    for opt in strings
        .iter()
        .flat_map(|s| s.as_ref().split(','))
        .map(str::trim)
    {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let number = |v: Option<&str>| -> Result<usize, OptionError> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| OptionError::NotANumber(opt.to_string()))
        };
        match key {
            "" | "ro" | "defaults" | "nosuid" | "nodev" | "default_permissions" | "exec" => {}
            "rw" => return Err(OptionError::ReadOnly(opt.into())),
            "suid" | "dev" => return Err(OptionError::Unsafe(opt.into())),
            "allow_other" => p.allow_other = true,
            "allow_root" => p.allow_root = true,
            "noexec" => p.noexec = true,
            "nonempty" => p.nonempty = true,
            "noxattr" => p.noxattr = true,
            "fsname" => p.fsname = value.map(str::to_string),
            "cache_mib" => p.cache_mib = Some(number(value)?),
            "threads" => p.threads = Some(number(value)?),
            // For mount(8) / systemd only, or meaningless on a read-only filesystem.
            "_netdev" | "noauto" | "auto" | "nofail" | "user" | "users" | "nouser" | "owner"
            | "group" | "comment" | "atime" | "noatime" | "relatime" | "norelatime"
            | "strictatime" | "lazytime" | "nodiratime" | "diratime" | "sync" | "async"
            | "dirsync" | "silent" | "loud" | "auto_unmount" | "subtype" => {}
            k if k.starts_with("x-") => {}
            _ => return Err(OptionError::Unknown(opt.into())),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_options() {
        let p = parse_options(&[
            "ro,allow_other,_netdev,noauto,nofail,x-systemd.automount",
            "user",
        ])
        .unwrap();
        assert_eq!(
            p,
            ParsedOptions {
                allow_other: true,
                ..Default::default()
            }
        );
        let p =
            parse_options(&["defaults,noexec,cache_mib=512,threads=8,fsname=/srv/store"]).unwrap();
        assert!(p.noexec && !p.allow_other && !p.noxattr);
        assert!(parse_options(&["ro,noxattr"]).unwrap().noxattr);
        assert_eq!((p.cache_mib, p.threads), (Some(512), Some(8)));
        assert_eq!(p.fsname.as_deref(), Some("/srv/store"));
        assert_eq!(
            parse_options::<&str>(&[]).unwrap(),
            ParsedOptions::default()
        );
        assert_eq!(parse_options(&[""]).unwrap(), ParsedOptions::default());
    }

    #[test]
    fn refused_options() {
        assert_eq!(
            parse_options(&["ro,rw"]),
            Err(OptionError::ReadOnly("rw".into()))
        );
        assert!(parse_options(&["rw"])
            .unwrap_err()
            .to_string()
            .contains("read-only filesystem"));
        assert_eq!(
            parse_options(&["suid"]),
            Err(OptionError::Unsafe("suid".into()))
        );
        assert_eq!(
            parse_options(&["dev"]),
            Err(OptionError::Unsafe("dev".into()))
        );
        assert_eq!(
            parse_options(&["cache_mib=lots"]),
            Err(OptionError::NotANumber("cache_mib=lots".into()))
        );
        assert_eq!(
            parse_options(&["threads"]),
            Err(OptionError::NotANumber("threads".into()))
        );
        assert_eq!(
            parse_options(&["bogus"]),
            Err(OptionError::Unknown("bogus".into()))
        );
    }
}
