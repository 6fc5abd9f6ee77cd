use super::*;

#[test]
fn grid_expands_to_the_product_with_stable_ids() {
    let dir = smoke_base();
    let grid_text = "experiment = \"g\"\nbase = \"base.toml\"\n\
        [[datasets]]\nlabel = \"A\"\nmake = \"smoke\"\n\
        [[datasets]]\nlabel = \"B\"\nset = { \"data.root\" = \"e\" }\ncategories = [\"p\", \"q\"]\n\
        [axes]\n\"model.attention\" = [\"none\", \"se\"]\n\"train.seed\" = [0, 1, 2]\n";
    let grid_path = dir.path().join("grid.toml");
    fs::write(&grid_path, grid_text).unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let plan = expand(&grid_path, &grid).unwrap();
    assert_eq!(plan.runs.len(), 3 * 2 * 3);
    let again = expand(&grid_path, &grid).unwrap();
    let ids: Vec<_> = plan.runs.iter().map(|r| &r.run_id).collect();
    let ids2: Vec<_> = again.runs.iter().map(|r| &r.run_id).collect();
    assert_eq!(ids, ids2);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    // Generated data is never missing; B's root does not exist.
    assert!(plan.runs[0].missing.is_none());
    assert!(plan.runs[6].missing.as_ref().unwrap().contains("\"B\""));
    assert_eq!(plan.runs[6].category, "p");
    assert_eq!(plan.runs[0].axes["model.attention"], "\"none\"");
}

/// A folder holding `base.toml`, a minimal smoke-set run config that grids build on.
fn smoke_base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("base.toml"),
        "experiment = \"x\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"shapes\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn grid_typos_fail_before_anything_runs() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.atention\" = [\"se\"]\n",
    )
    .unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let e = expand(&grid_path, &grid).unwrap_err();
    assert!(format!("{e:#}").contains("atention"), "{e:#}");
    // A value the backbone cannot take fails here as it would fail the run.
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.image_size\" = [128, 7]\n",
    )
    .unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let e = expand(&grid_path, &grid).unwrap_err();
    assert!(format!("{e:#}").contains("too small"), "{e:#}");
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabell = \"A\"\n",
    )
    .unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("labell"), "{e:#}");
}

#[test]
fn regimes_cross_the_axes_and_vanilla_is_one_run_across_them() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    let grid_text = "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.attention\" = [\"none\", \"se\"]\n\"train.seed\" = [0, 1]\n\
         [[regimes]]\nlabel = \"frozen\"\n\
         [[regimes]]\nlabel = \"joint\"\nset = { \"model.attention_training\" = \"joint\" }\n\
         [[regimes]]\nlabel = \"charged\"\nset = { \"model.attention_training\" = \"joint\", \
         \"train.volume_charge\" = 1.0 }\n";
    fs::write(&grid_path, grid_text).unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let plan = expand(&grid_path, &grid).unwrap();
    // 2 vanilla seeds (once, under the first regime) + 2 SE seeds × 3 regimes.
    assert_eq!(plan.runs.len(), 8);
    assert_eq!(plan.axis_keys.last().map(String::as_str), Some(REGIME_AXIS));
    let regime = |r: &PlannedRun| r.axes[REGIME_AXIS].clone();
    let vanilla: Vec<_> = plan
        .runs
        .iter()
        .filter(|r| r.axes["model.attention"] == "\"none\"")
        .collect();
    assert_eq!(vanilla.len(), 2);
    assert!(vanilla.iter().all(|r| regime(r) == "\"frozen\""));
    let charged = plan
        .runs
        .iter()
        .find(|r| regime(r) == "\"charged\"")
        .unwrap();
    assert!(
        charged
            .overrides
            .iter()
            .any(|o| o == "train.volume_charge=1.0")
    );
    // A regime that sets an axis key, or two regimes of one label, are refused.
    let clash = grid_text.replace(
        "\"model.attention_training\" = \"joint\" }",
        "\"train.seed\" = 3 }",
    );
    fs::write(&grid_path, clash).unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("belongs in [axes]"), "{e:#}");
    let clash = grid_text.replace(
        "\"train.seed\" = [0, 1]\n",
        "\"train.seed\" = [0, 1]\n\"train.volume_charge\" = [0.0, 1.0]\n",
    );
    fs::write(&grid_path, clash).unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("also an axis"), "{e:#}");
    fs::write(&grid_path, grid_text.replace("\"charged\"", "\"joint\"")).unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("label"), "{e:#}");
}

#[test]
fn flows_cross_everything_and_a_regime_can_name_its_attention() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    let grid_text = "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.attention\" = [\"none\", \"se\", \"cbam\"]\n\
         [[regimes]]\nlabel = \"frozen\"\nattention = [\"cbam\"]\n\
         [[regimes]]\nlabel = \"joint\"\nset = { \"model.attention_training\" = \"joint\" }\n\
         [[flows]]\nlabel = \"DifferNet\"\n\
         [[flows]]\nlabel = \"FastFlow\"\nset = { \"flow.kind\" = \"fastflow\", \"model.scales\" = 1 }\n";
    fs::write(&grid_path, grid_text).unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let plan = expand(&grid_path, &grid).unwrap();
    // Per flow: vanilla, CBAM frozen (SE is not frozen here), SE joint, CBAM joint.
    assert_eq!(plan.runs.len(), 2 * 4);
    assert_eq!(plan.axis_keys.last().map(String::as_str), Some(FLOW_AXIS));
    let with = |flow: &str, attention: &str| {
        plan.runs
            .iter()
            .filter(|r| r.axes[FLOW_AXIS] == flow && r.axes["model.attention"] == attention)
            .count()
    };
    for flow in ["\"DifferNet\"", "\"FastFlow\""] {
        assert_eq!(with(flow, "\"none\""), 1);
        assert_eq!(with(flow, "\"se\""), 1);
        assert_eq!(with(flow, "\"cbam\""), 2);
    }
    let fast = plan
        .runs
        .iter()
        .find(|r| r.axes[FLOW_AXIS] == "\"FastFlow\"")
        .unwrap();
    assert!(fast.overrides.iter().any(|o| o == "flow.kind=\"fastflow\""));
    // A regime naming an attention that does not exist is refused by its name.
    fs::write(
        &grid_path,
        grid_text.replace("attention = [\"cbam\"]", "attention = [\"cbma\"]"),
    )
    .unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("cbma"), "{e:#}");
    // A flow that sets what an axis or a regime sets is refused.
    let clash = grid_text.replace(
        "\"model.scales\" = 1",
        "\"model.attention_training\" = \"joint\"",
    );
    fs::write(&grid_path, clash).unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("a regime sets too"), "{e:#}");
}

#[test]
fn every_committed_grid_expands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut grids = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        // Grids name a base; run configs and published.toml do not.
        if !text.lines().any(|l| l.starts_with("base = ")) {
            continue;
        }
        let grid = load_grid(&path).unwrap();
        let plan = expand(&path, &grid).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        assert!(!plan.runs.is_empty(), "{}", path.display());
        grids += 1;
    }
    assert!(grids >= 4, "found {grids} grids in {}", dir.display());
}

#[test]
fn numbered_categories_need_no_quotes() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"W\"\n\
         set = { \"data.root\" = \"w\" }\ncategories = [3, \"b\"]\n",
    )
    .unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let plan = expand(&grid_path, &grid).unwrap();
    let categories: Vec<&str> = plan.runs.iter().map(|r| r.category.as_str()).collect();
    assert_eq!(categories, ["3", "b"]);
    // Anything else is an error that says what a category is.
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"W\"\ncategories = [1.5]\n",
    )
    .unwrap();
    let e = load_grid(&grid_path).unwrap_err();
    assert!(format!("{e:#}").contains("category folder name"), "{e:#}");
}

#[test]
fn an_entry_that_repeats_another_is_refused_by_name() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    let head = "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.attention\" = [\"none\", \"se\"]\n";
    let expand_text = |text: &str| {
        fs::write(&grid_path, text).unwrap();
        load_grid(&grid_path).and_then(|g| expand(&grid_path, &g))
    };
    // Two flows with the same settings: both labels named, not one silently dropped.
    let e = expand_text(&format!(
        "{head}[[flows]]\nlabel = \"Fast\"\nset = {{ \"flow.kind\" = \"fastflow\", \"model.scales\" = 1 }}\n\
         [[flows]]\nlabel = \"Fast again\"\nset = {{ \"model.scales\" = 1, \"flow.kind\" = \"fastflow\" }}\n"
    ))
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("\"Fast\"") && e.contains("\"Fast again\""),
        "{e}"
    );
    // Two datasets that resolve to the same data.
    let e = expand_text(&format!("{head}[[datasets]]\nlabel = \"A copy\"\n")).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("\"A\"") && e.contains("\"A copy\""), "{e}");
    // A value listed twice on an axis.
    let e =
        expand_text(&head.replace("[\"none\", \"se\"]", "[\"se\", \"none\", \"se\"]")).unwrap_err();
    assert!(format!("{e:#}").contains("twice"), "{e:#}");
    // A key one family does not use, crossed with families: that family's runs are one
    // run per attention value, without a word.
    let plan = expand_text(&format!(
        "{head}\"flow.hidden\" = [256, 512]\n[[flows]]\nlabel = \"DifferNet\"\n\
         [[flows]]\nlabel = \"Fast\"\nset = {{ \"flow.kind\" = \"fastflow\", \"model.scales\" = 1 }}\n"
    ))
    .unwrap();
    assert_eq!(plan.runs.len(), 2 * 2 + 2, "{:#?}", plan.runs);
    // Vanilla shared across regimes is still one run, without a word.
    let plan = expand_text(&format!(
        "{head}[[regimes]]\nlabel = \"frozen\"\n\
         [[regimes]]\nlabel = \"joint\"\nset = {{ \"model.attention_training\" = \"joint\" }}\n"
    ))
    .unwrap();
    assert_eq!(plan.runs.len(), 3);
}

#[test]
fn an_unknown_feature_layer_names_its_key() {
    let dir = smoke_base();
    let grid_path = dir.path().join("grid.toml");
    fs::write(
        &grid_path,
        "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
         [axes]\n\"model.feature_layers\" = [[\"relu9\"]]\n",
    )
    .unwrap();
    let grid = load_grid(&grid_path).unwrap();
    let e = format!("{:#}", expand(&grid_path, &grid).unwrap_err());
    assert!(
        e.contains("model.feature_layers") && e.contains("relu9") && !e.contains("attention"),
        "{e}"
    );
}
