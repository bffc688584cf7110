//! Process limits the server raises at start.
//!
//! Every connection is a file descriptor. The common default soft limit of 1,024 open files lets a
//! thousand idle clients stop the server for everyone, while the hard limit (often 500,000 or
//! more) is the administrator's real choice; so the soft limit is raised to the hard one at start,
//! and the figure is logged.

/// Raises the soft limit of open files to the hard limit; the limit now in force, if the OS
/// tells it (`None`: unlimited or unknown).
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, "cannot raise the open-files limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_of_open_files_is_raised_to_the_hard_one() {
        let now = raise_open_files();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
