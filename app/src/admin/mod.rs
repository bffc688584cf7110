//! The admin screens: everything the licensing admin API does, through forms.
//!
//! Each screen is a client-side route under `/admin/`, wrapped in [`shell::Shell`], which shows
//! the login form instead when no one is logged in (and comes back to the same address
//! afterwards). Every change goes through [`task::Task`]: the button is disabled while the request
//! runs, and the error is shown next to the form that caused it. Viewers see the same screens
//! without the buttons that would change anything; the server refuses those calls anyway.

mod license_drawer;
mod license_install;
mod license_table;
mod licenses;
mod login;
mod login_form;
mod sessions;
mod shell;
mod task;
mod usage;
mod usage_tables;
mod users;
mod vendor;

pub use self::{
    licenses::LicensesScreen, login::LoginScreen, sessions::SessionsScreen, usage::UsageScreen,
    users::UsersScreen, vendor::VendorScreen,
};
