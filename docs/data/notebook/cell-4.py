rec = res.recommendation
print(rec.keep)
print(rec.value, rec.candidates)
print(rec.rule)
print(rec.how_sure)
print(rec.labels)