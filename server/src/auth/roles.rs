//! Roles and permissions of the admin API.
//!
//! Permissions are `{scope}.VIEW_LICENSE` and `{scope}.EDIT_LICENSE`. An `admin` holds both, a
//! `viewer` only VIEW. A user without a scope holds them as `server.*`, which grants them for every
//! scope; a user with a scope holds them for that scope only. The admin API's own scope is
//! [`SCOPE`].

use super::error::AuthError;

/// The scope that grants a permission for every scope.
pub const ALL_SCOPES: &str = "server";
/// The admin API's application scope: a user limited to this scope may use it.
pub const SCOPE: &str = "license";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    View,
    Edit,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Self::View => "VIEW_LICENSE",
            Self::Edit => "EDIT_LICENSE",
        }
    }
}

/// The permissions of a role, as the login answer lists them.
pub fn permissions(role: Role, scope: Option<&str>) -> Vec<String> {
    let scope = scope.unwrap_or(ALL_SCOPES);
    let held: &[Permission] = match role {
        Role::Admin => &[Permission::View, Permission::Edit],
        Role::Viewer => &[Permission::View],
    };
    held.iter()
        .map(|p| format!("{scope}.{}", p.name()))
        .collect()
}

/// A logged-in administrator, as a request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    pub principal: String,
    pub realm: String,
    pub role: Role,
    pub scope: Option<String>,
}

impl AdminSession {
    pub fn allows(&self, permission: Permission) -> bool {
        let scope_ok = match self.scope.as_deref() {
            None | Some(ALL_SCOPES) | Some(SCOPE) => true,
            Some(_) => false,
        };
        scope_ok && (self.role == Role::Admin || permission == Permission::View)
    }

    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.allows(permission) {
            Ok(())
        } else {
            let name = permission.name();
            Err(AuthError::Forbidden {
                principal: self.principal.clone(),
                needs: format!("{SCOPE}.{name} (or {ALL_SCOPES}.{name})"),
            })
        }
    }

    /// Who did it, for the ledger.
    pub fn actor(&self) -> String {
        format!("{}@{}", self.principal, self.realm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_grant_what_they_say() {
        let session = |role, scope: Option<&str>| AdminSession {
            principal: "p".into(),
            realm: "local".into(),
            role,
            scope: scope.map(str::to_owned),
        };
        assert!(session(Role::Admin, None).allows(Permission::Edit));
        assert!(session(Role::Viewer, None).allows(Permission::View));
        assert!(!session(Role::Viewer, None).allows(Permission::Edit));
        assert!(session(Role::Admin, Some(SCOPE)).allows(Permission::Edit));
        assert!(!session(Role::Admin, Some("other-app")).allows(Permission::View));
        assert_eq!(
            permissions(Role::Viewer, Some("other-app")),
            ["other-app.VIEW_LICENSE"]
        );
        assert_eq!(
            permissions(Role::Admin, None),
            ["server.VIEW_LICENSE", "server.EDIT_LICENSE"]
        );
    }
}
