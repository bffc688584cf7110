//! The public status page's bundle: what every browser that opens `/status/index.html` loads.
//! It holds no admin screen, so it stays about half the size of the admin bundle.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::StatusApp);
}
