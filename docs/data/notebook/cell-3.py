res = rankme.select("runs", param="temperature")
display(res)