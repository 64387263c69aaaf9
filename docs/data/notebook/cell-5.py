print("RankMe's pick:", res.best)
print("plateau:", res.plateau)
for w in res.warnings:
    print(w)