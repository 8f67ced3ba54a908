#!/usr/bin/env python3
"""Is a consensus of every bookmaker's pre-match odds sharper than Pinnacle's alone? (issue 14)

RPS of the pre-match ("opening") 1X2 odds on football-data.co.uk files: the preferred book
(Pinnacle first, as MatchOdds::best_pre_match), normalised or by the power method; the mean and
the logit mean of each individual book's de-margined probabilities (Max/Avg columns left out);
the files' market average; half Pinnacle, half consensus; and Pinnacle's closing odds.
Usage: infra/bench/consensus_odds.py E0,D1,I1,SP1,F1 1718,1819,1920   (the validation seasons)
Data: $FP_DATA_ROOT (default ../shared/data/football-data-co-uk).
"""
import csv, math, os, sys
D = os.environ.get("FP_DATA_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/data/football-data-co-uk"))
SKIP={"Max","BbMx","Avg","BbAv"}
def rps(p,o):
    c1=p[0]-(o==0); c2=p[0]+p[1]-(o<=1)
    return 0.5*(c1*c1+c2*c2)
def mult(o):
    pi=[1/x for x in o]; s=sum(pi); return [x/s for x in pi]
def power(o):
    pi=[1/x for x in o]
    if sum(pi)<=1: return mult(o)
    lo,hi=1.0,10.0
    for _ in range(60):
        k=(lo+hi)/2
        if sum(x**k for x in pi)>1: lo=k
        else: hi=k
    p=[x**k for x in pi]; s=sum(p); return [x/s for x in p]
def fl(v):
    try:
        x=float(v); return x if x>1 else None
    except: return None
def books(row, hdr):
    out={}
    for h in hdr:
        if h.endswith("H") and not h.endswith("CH") and h[:-1]+"D" in hdr and h[:-1]+"A" in hdr:
            b=h[:-1]
            if b in ("FTH","HT","F","HTH","") or b.startswith("FT") : continue
            o=[fl(row.get(b+s)) for s in "HDA"]
            if all(o): out[b]=o
    return out
def lm(ps):
    l=[[math.log(p[i]) for i in range(3)] for p in ps]
    m=[sum(x[i] for x in l)/len(l) for i in range(3)]
    e=[math.exp(x) for x in m]; s=sum(e); return [x/s for x in e]
leagues=sys.argv[1].split(","); seasons=sys.argv[2].split(",")
agg={}
for L in leagues:
  for S in seasons:
    f=f"{D}/{L}/{L}_{S}.csv"
    rd=csv.DictReader(open(f,encoding="latin-1")); hdr=set(rd.fieldnames)
    for row in rd:
        r=row.get("FTR")
        if r not in ("H","D","A"): continue
        o="HDA".index(r)
        bk=books(row,hdr)
        ind={b:v for b,v in bk.items() if b not in SKIP and not b.startswith("PSC") and not b.endswith("C") }
        pref=next((b for b in ["PS","Avg","BbAv","B365","WH","Max","BbMx"] if b in bk),None)
        if pref is None or not ind: continue
        cands={}
        cands["pref_mult"]=mult(bk[pref])
        cands["pref_power"]=power(bk[pref])
        cands["cons_mean_mult"]=[sum(mult(v)[i] for v in ind.values())/len(ind) for i in range(3)]
        cands["cons_mean_power"]=[sum(power(v)[i] for v in ind.values())/len(ind) for i in range(3)]
        cands["cons_logit_power"]=lm([power(v) for v in ind.values()])
        if "Avg" in bk or "BbAv" in bk:
            cands["avg_power"]=power(bk.get("Avg") or bk.get("BbAv"))
        ps=power(bk[pref]); cp=cands["cons_logit_power"]
        cands["half_pref_cons"]=lm([ps,cp])
        if "PSCH" in row and fl(row.get("PSCH")):
            cands["closing"]=mult([fl(row["PSCH"]),fl(row["PSCD"]),fl(row["PSCA"])])
        if not all(k in cands for k in ["closing"]): continue
        for k,p in cands.items():
            a=agg.setdefault(k,[0,0.0]); a[0]+=1; a[1]+=rps(p,o)
for k,(n,s) in agg.items(): print(f"{k:20s} {n:5d} {s/n:.5f}")
