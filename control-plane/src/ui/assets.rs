//! The dashboard's files, built into the binary from `control-plane/ui/`.

pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $ct:literal),* $(,)?) => {
        &[$(($path, $ct, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)) as &[u8])),*]
    };
}

static FILES: &[(&str, &str, &[u8])] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/chart.js" => "text/javascript; charset=utf-8",
    "js/signin.js" => "text/javascript; charset=utf-8",
    "js/keys.js" => "text/javascript; charset=utf-8",
    "js/key_form.js" => "text/javascript; charset=utf-8",
    "js/accounts.js" => "text/javascript; charset=utf-8",
    "js/usage.js" => "text/javascript; charset=utf-8",
    "js/status.js" => "text/javascript; charset=utf-8",
    "js/overview.js" => "text/javascript; charset=utf-8",
    "js/catalog.js" => "text/javascript; charset=utf-8",
    "js/me.js" => "text/javascript; charset=utf-8",
    "js/quickstart.js" => "text/javascript; charset=utf-8",
    "js/operators.js" => "text/javascript; charset=utf-8",
    "vendor/uPlot.iife.min.js" => "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css" => "text/css; charset=utf-8",
};

pub fn find(path: &str) -> Option<Asset> {
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| Asset { content_type, body })
}
