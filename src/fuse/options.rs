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
    /// Whether extended attributes are shown (`xattr`, `noxattr`, default `xattr=auto`).
    pub xattr: XattrMode,
    pub cache_mib: Option<usize>,
    pub threads: Option<usize>,
}

/// Extended attributes through the mount. Off means the first getxattr/listxattr answers
/// ENOSYS and the kernel stops asking for the rest of the mount (`ls -l` otherwise costs two
/// round trips per file, which the kernel never caches); that answer cannot be taken back
/// until a remount, hence `Auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XattrMode {
    /// Off when every snapshot shown at mount time records that it has none
    /// (`Manifest::has_xattrs == Some(false)`), else on.
    #[default]
    Auto,
    /// `-o xattr`: always answered from the snapshots.
    On,
    /// `-o noxattr`: never (ENOSYS).
    Off,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("mount option {0:?}: read-only filesystem")]
    ReadOnly(String),
    #[error("mount option {0:?} is not supported (the mount is always nosuid,nodev)")]
    Unsafe(String),
    #[error("mount option {0:?}: not a number")]
    NotANumber(String),
    #[error("mount option {0:?}: use xattr, noxattr or xattr=auto|on|off")]
    BadXattr(String),
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
            "noxattr" => p.xattr = XattrMode::Off,
            "xattr" => {
                p.xattr = match value {
                    None | Some("on") => XattrMode::On,
                    Some("off") => XattrMode::Off,
                    Some("auto") => XattrMode::Auto,
                    Some(_) => return Err(OptionError::BadXattr(opt.into())),
                }
            }
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
        assert!(p.noexec && !p.allow_other);
        assert_eq!(p.xattr, XattrMode::Auto);
        let xattr = |s: &str| parse_options(&[s]).map(|p| p.xattr);
        assert_eq!(xattr("ro,noxattr"), Ok(XattrMode::Off));
        assert_eq!(xattr("ro,xattr"), Ok(XattrMode::On));
        assert_eq!(xattr("xattr=on"), Ok(XattrMode::On));
        assert_eq!(xattr("xattr=off"), Ok(XattrMode::Off));
        assert_eq!(xattr("noxattr,xattr=auto"), Ok(XattrMode::Auto));
        // The last one wins, as mount(8) does with contradicting options.
        assert_eq!(xattr("xattr,noxattr"), Ok(XattrMode::Off));
        assert_eq!(
            xattr("xattr=maybe"),
            Err(OptionError::BadXattr("xattr=maybe".into()))
        );
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
