fn main() {
    let cases = [
        "[prior]\nname = \"gp\"\n\n[optimizer]\nlr = 1e-4\n\nlrr = 3\n",
        "[prior]\nname = \"gp\"\n[optimiser]\nlr = 1\n",
        "[prior]\nname = \"gp\"\nfoo = 1\n",
        "bar = 1\n[prior]\nname = \"gp\"\n",
        "[prior]\nnum_features = 2\n",
        "[model]\nemsize = 2\n",
        "[prior]\nname = \"gp\"\n[model]\nemsize = -3\n",
        "[prior]\nname = \"gp\"\n[model]\nemsize = \"big\"\n",
        "[prior]\nname = \"gp\"\nsplit = \"wighted\"\n",
        "[prior]\nname = \"gp\"\n[model\nemsize = 3\n",
        "[prior]\nname = \"gp\"\n[model]\nemsize = 3 3\n",
        "[prior]\nname = \"gp\"\n[model]\nemsize = 3\nemsize = 4\n",
        "[prior]\nname = \"gp\"\n[optimizer]\nbetas = [0.9]\n",
        "[prior]\nname = \"gp\"\n[prior.params]\nls = 0.5\n[model]\nemsize = 100\nnhead = 3\n",
        "[prior]\nname = \"gp\"\noptimizer.lrr = 3\n",
        "[prior]\nname = \"gp\"\n[prior.paramz]\na = 1\n",
        "[prior]\nname = \"gp\"\n[model]\ndropout = 0.1\n",
    ];
    for c in cases {
        match pfn_train::RunConfig::from_toml_str(c, "config.toml") {
            Ok(c) => println!("OK {:?}", c.prior),
            Err(e) => println!("{e}"),
        }
    }
}
