//! The page, embedded in the binary: no file or network access at run time.

/// The HTML document served at `/`.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The page's script, served at `/app.js`.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// The page's style sheet, served at `/style.css`.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_the_network() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(needle), "{name} references '{needle}'");
            }
        }
        assert!(INDEX_HTML.contains("src=\"/app.js\""));
        assert!(INDEX_HTML.contains("href=\"/style.css\""));
    }
}
