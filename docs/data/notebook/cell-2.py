# temperature: (strong directions, size of the 64 - strong weak ones)
spectra = {0.05: (6, 0.25), 0.1: (16, 0.1), 0.2: (24, 0.05), 0.5: (10, 0.02)}
for t, (strong, tail) in spectra.items():
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        scale = np.r_[np.ones(strong), np.full(64 - strong, tail)]
        rotation = np.linalg.qr(rng.standard_normal((64, 64)))[0]
        z = rng.standard_normal((1000, 64)) * scale @ rotation
        run = Path(f"runs/temperature={t}/seed={seed}")
        run.mkdir(parents=True, exist_ok=True)
        np.save(run / "emb.npy", z)
print(*sorted(Path("runs").rglob("*.npy")), sep="\n")