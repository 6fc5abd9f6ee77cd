use super::*;

#[test]
fn labels_parse_and_split_reproducibly() {
    let mut text = String::new();
    for i in 0..20 {
        let p = if i < 10 {
            "0.0"
        } else if i < 15 {
            "1.0"
        } else {
            "0.3333333333333333"
        };
        text.push_str(&format!("images/cell{i:04}.png  {p}   mono\n"));
    }
    text.push_str("images/cell0100.png  0.0  poly\n");
    let labels = parse_labels(&text, Path::new("labels.csv")).unwrap();
    assert_eq!(labels.len(), 21);
    let (a, excluded) = split(&labels, "mono", 3, 0.7);
    let (b, _) = split(&labels, "mono", 3, 0.7);
    assert_eq!(excluded, 5);
    assert_eq!(
        a.iter().map(|e| &e.dest).collect::<Vec<_>>(),
        b.iter().map(|e| &e.dest).collect::<Vec<_>>()
    );
    let count = |p: &str| a.iter().filter(|e| e.dest.starts_with(p)).count();
    assert_eq!(
        (
            count("train/good/"),
            count("test/good/"),
            count("test/defect/")
        ),
        (7, 3, 5)
    );
    let (c, _) = split(&labels, "mono", 4, 0.7);
    assert_ne!(
        a.iter().map(|e| &e.dest).collect::<Vec<_>>(),
        c.iter().map(|e| &e.dest).collect::<Vec<_>>()
    );
}

#[test]
fn bad_labels_name_the_line() {
    let err = parse_labels(
        "images/a.png 0.0 mono\nimages/b.png x mono\n",
        Path::new("l.csv"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("l.csv") && err.contains("line 2"), "{err}");
    assert!(parse_labels("images/a.png 0.0 tri\n", Path::new("l.csv")).is_err());
    assert!(parse_labels("../x.png 0.0 mono\n", Path::new("l.csv")).is_err());
}

#[test]
fn published_split_counts() {
    // The real label distribution: mono 588 at p=0 and 313 at p=1, poly 920 and 402.
    let mut labels = Vec::new();
    for (t, good, bad) in [("mono", 588, 313), ("poly", 920, 402)] {
        for i in 0..good + bad {
            labels.push(Label {
                path: format!("images/{t}{i:04}.png"),
                probability: if i < good { 0.0 } else { 1.0 },
                cell_type: t.into(),
            });
        }
    }
    for (t, expect) in [("mono", (412, 176, 313)), ("poly", (644, 276, 402))] {
        let (e, _) = split(&labels, t, 0, TRAIN_FRACTION);
        let count = |p: &str| e.iter().filter(|x| x.dest.starts_with(p)).count();
        assert_eq!(
            (
                count("train/good/"),
                count("test/good/"),
                count("test/defect/")
            ),
            expect
        );
    }
}
