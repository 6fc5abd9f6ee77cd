//! The experiment's HTML page: what it shows, that it links only files beside it, and (where
//! Chromium is installed) that a real browser loads it without error and sorts its tables.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use adn_report::page::{local_links, missing_links, write_page};
use adn_report::tables::all_tables;
use adn_report::{Status, gather, write_tables};
use common::{published, write_experiment};

/// The hand-written experiment with its tables, figures and page; the page's HTML.
fn experiment_with_page(dir: &Path) -> String {
    write_experiment(dir);
    let exp = gather(dir).unwrap();
    write_tables(&exp, &published()).unwrap();
    adn_report::figures::write_figures(&exp).unwrap();
    let page = write_page(&exp, &published()).unwrap();
    assert_eq!(page, dir.join("index.html"));
    fs::read_to_string(page).unwrap()
}

#[test]
fn the_page_shows_every_table_figure_and_run_and_links_only_files_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let html = experiment_with_page(tmp.path());
    assert_eq!(missing_links(tmp.path(), &html), Vec::<String>::new());
    assert!(
        !html.contains(&tmp.path().display().to_string()),
        "a machine path"
    );
    // The text as a reader sees it (the template escapes quotes and slashes).
    let text = html
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    // Every figure drawn is shown, with a caption that names what it shows.
    let pngs: Vec<String> = fs::read_dir(tmp.path().join("figures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".png"))
        .collect();
    // Bars of 3 metrics, the Δ plot, then ROC, scores and training of 2 datasets.
    assert_eq!(pngs.len(), 10, "{pngs:?}");
    for png in &pngs {
        assert!(
            local_links(&html).contains(&format!("figures/{png}")),
            "{png}"
        );
    }
    assert_eq!(html.matches("<figcaption>").count(), pngs.len());
    assert!(
        text.contains("ROC curves of the image scores on InsPLAD-fault, category glass-insulator")
    );
    assert!(text.contains("mean ± sd over up to 3 seeds per bar"));
    // The same captions for LaTeX, one float per figure.
    let tex = fs::read_to_string(tmp.path().join("figures/figures.tex")).unwrap();
    assert_eq!(tex.matches("\\caption{").count(), pngs.len());
    assert!(tex.contains("\\includegraphics[width=\\linewidth]{figures/auroc_last_bars.png}"));
    assert!(tex.contains("mean $\\pm$ sd over up to 3 seeds per bar"));
    // Every table, with its intervals and Holm-adjusted p-values.
    let exp = gather(tmp.path()).unwrap();
    for t in all_tables(&exp, &published()) {
        assert!(
            text.contains(&format!("<summary>{}</summary>", t.title)),
            "{}",
            t.title
        );
    }
    assert!(text.contains("95 % CI") && text.contains("p (Holm)"));
    // Every planned run is a row; each complete one has a detail with its three charts.
    for r in &exp.runs {
        assert!(html.contains(&format!(">{}<", r.run_id)), "{}", r.run_id);
    }
    let complete = exp.count(Status::Complete);
    assert_eq!(html.matches("<details class=\"run\"").count(), complete);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 3 * complete);
    assert!(html.contains("title=\"training loss became NaN\""));
    // The one script is the page's own: values are escaped.
    assert_eq!(html.matches("<script").count(), 1);
}

#[test]
fn a_figure_file_the_report_does_not_draw_is_an_error_not_an_uncaptioned_figure() {
    let tmp = tempfile::tempdir().unwrap();
    experiment_with_page(tmp.path());
    fs::copy(
        tmp.path().join("figures/auroc_last_bars.png"),
        tmp.path().join("figures/stray.png"),
    )
    .unwrap();
    let before = fs::read(tmp.path().join("index.html")).unwrap();
    let exp = gather(tmp.path()).unwrap();
    let e = format!("{:#}", write_page(&exp, &published()).unwrap_err());
    assert!(e.contains("stray.png") && e.contains("caption"), "{e}");
    // The page already written stays whole.
    assert_eq!(fs::read(tmp.path().join("index.html")).unwrap(), before);
}

/// Chromium: `$CHROMIUM`, else the first of the usual names that runs.
fn chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("CHROMIUM") {
        Some(p) => vec![p.into()],
        None => ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Put first in the page's head: records every error (scripts, resources that fail to
/// load, `console.error`), then on load checks the images, sorts the runs table both ways
/// by a number column, opens a run's detail from its link, and writes what it found into
/// `<pre id="page-check">` as JSON.
const CHECK: &str = r##"<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window && (t.src || t.href) ? "cannot load " + (t.src || t.href) : String(e.message));
}, true);
console.error = function () { window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); };
window.addEventListener("load", function () {
  var out = { errors: window.__errors, images: 0, broken: [], sorted: false, detail: false };
  document.querySelectorAll("img").forEach(function (img) {
    out.images++;
    if (!img.complete || img.naturalWidth === 0) { out.broken.push(img.getAttribute("src")); }
  });
  var table = document.getElementById("table-runs");
  var heads = table.tHead.rows[0].cells, col = -1;
  for (var i = 0; i < heads.length; i++) { if (heads[i].textContent.trim() === "AUROC last %") { col = i; } }
  function column() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[col].getAttribute("data-sort"); })
      .filter(function (v) { return v !== null; }).map(parseFloat);
  }
  function ordered(a, sign) { for (var i = 1; i < a.length; i++) { if (sign * (a[i] - a[i - 1]) < 0) { return false; } } return true; }
  heads[col].click(); var up = column();
  heads[col].click(); var down = column();
  out.sorted = up.length > 1 && up[0] !== down[0] && ordered(up, 1) && ordered(down, -1);
  var link = document.querySelector('a[href^="#run-"]');
  location.hash = link.getAttribute("href");
  setTimeout(function () {
    var d = document.getElementById(link.getAttribute("href").slice(1));
    out.detail = !!(d && d.open && d.querySelectorAll("svg").length === 3);
    var pre = document.createElement("pre");
    pre.id = "page-check";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }, 200);
});
</script>"##;

#[test]
#[ignore = "needs Chromium; cargo xtask test runs it where Chromium is installed"]
fn the_page_opens_in_headless_chromium_with_no_error_every_image_loads_and_tables_sort() {
    let chromium = chromium().expect("Chromium (set CHROMIUM to its path)");
    let tmp = tempfile::tempdir().unwrap();
    let html = experiment_with_page(tmp.path());
    // The checked copy sits beside the page, so every relative link resolves as the page's.
    let checked = tmp.path().join("checked.html");
    fs::write(
        &checked,
        html.replacen("<head>", &format!("<head>{CHECK}"), 1),
    )
    .unwrap();
    let browse = |extra: &[String], page: &Path| {
        let out = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--virtual-time-budget=10000",
                "--window-size=1280,2400",
            ])
            .arg(format!(
                "--user-data-dir={}",
                tmp.path().join("profile").display()
            ))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = browse(&["--dump-dom".into()], &checked);
    let json = dom
        .split("<pre id=\"page-check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check did not finish; the page as loaded:\n{dom}"))
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let check: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(check["errors"], serde_json::json!([]), "{check}");
    assert_eq!(check["broken"], serde_json::json!([]), "{check}");
    assert_eq!(check["images"], 10, "{check}");
    assert_eq!(check["sorted"], true, "{check}");
    assert_eq!(check["detail"], true, "{check}");
    // The page itself, as a reader first sees it: a picture with something on it. Kept
    // where ADN_PAGE_SCREENSHOT says, for looking at.
    let shot = tmp.path().join("page.png");
    browse(
        &[format!("--screenshot={}", shot.display())],
        &tmp.path().join("index.html"),
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 100, "{} colours", colours.len());
    if let Some(keep) = std::env::var_os("ADN_PAGE_SCREENSHOT") {
        fs::copy(&shot, keep).unwrap();
    }
}
