#!/usr/bin/env python3
"""Candidate ml_model features, probed offline on the validation seasons (issue 14, sixth pass).

Reads the rolling training rows that `fp backtest --rows-cache DIR` keeps (the 12 features, the
outcome, the teams), adds a candidate feature computed here from the football-data.co.uk files,
and refits ml_model's two heads (standardised multinomial logit, L2 0.0003 per row; no
temperature) before each validation season 2017/18-2019/20 of E0, D1, I1, SP1, F1, on every row
before it, as `infra/bench/validation.sh` does. Prints the pooled RPS and each candidate's
paired difference to the baseline. The baseline reproduces fp's validation figure to 0.00001.
Needs numpy (`pip install numpy==2.4.6`); data in $FP_DATA_ROOT (default ../shared/data/...).
Rows: a backtest whose history covers the validation seasons, e.g.
  fp backtest --strategy ml_model --train E0/E0_{1213..1920}.csv --test E0/E0_2021.csv \
     --other <every D1, I1, SP1, F1 file> --rows-cache DIR
Usage: infra/bench/feature_probe.py DIR
"""
import json, glob, struct, csv, math, sys, os, bisect
import numpy as np
from datetime import datetime, date
ROOT=os.environ.get('FP_DATA_ROOT', os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../shared/data/football-data-co-uk'))
NAMES=["dc_supremacy","dc_draw","dc_total","dc_short_supremacy","elo_diff","form_diff","h2h","rest_diff","market_supremacy","market_goals","goal_supremacy","shots_supremacy"]
def b2f(b): return struct.unpack('<d', struct.pack('<Q', b))[0]
def load_rows(d):
    rows=[]
    for p in glob.glob(f'{d}/rows_*.json'):
        for c in json.load(open(p)):
            r=c['row']; x=[b2f(b) for b in c['x']]
            rows.append(dict(k=datetime.fromisoformat(r['kickoff']), home=r['home'], away=r['away'], x=x,
                             mk=r['market_known'], y=['home','draw','away'].index(r['outcome']), op=r.get('opening'),
                             comp=r.get('competition')))
    # dedupe (several cache files per competition with different histories): keep one per (comp,kickoff,home)
    seen={}
    for r in rows: seen[(r['comp'],r['k'],r['home'])]=r
    rows=sorted(seen.values(), key=lambda r:r['k'])
    return rows
def parse_date(s):
    for f in ('%d/%m/%Y','%d/%m/%y'):
        try: return datetime.strptime(s,f).date()
        except ValueError: pass
def season_matches(L,s):
    out=[]
    for r in csv.DictReader(open(f'{ROOT}/{L}/{L}_{s}.csv',encoding='latin-1')):
        if not r.get('HomeTeam'): continue
        out.append(r)
    return out
def season_bounds(L,s):
    ds=[parse_date(r['Date']) for r in season_matches(L,s)]
    return min(ds), max(ds)
def rps(P,y):
    Y=np.zeros_like(P); Y[np.arange(len(y)),y]=1
    c=np.cumsum(P,1)[:,:2]; e=np.cumsum(Y,1)[:,:2]
    return ((c-e)**2).sum(1)/2
def fit_mlogit(Z,y,w,l2):
    n,k=Z.shape; X=np.hstack([np.ones((n,1)),Z]); d=k+1
    th=np.zeros(2*d)
    for it in range(50):
        S=np.stack([X@th[:d], X@th[d:], np.zeros(n)],1)
        S-=S.max(1,keepdims=True); P=np.exp(S); P/=P.sum(1,keepdims=True)
        Y=np.zeros((n,3)); Y[np.arange(n),y]=1
        G=np.concatenate([X.T@(w*(P[:,0]-Y[:,0])), X.T@(w*(P[:,1]-Y[:,1]))])
        reg=np.ones(2*d)*l2; reg[0]=0; reg[d]=0
        G+=reg*th
        H=np.zeros((2*d,2*d))
        for a in range(2):
            for b in range(2):
                wab=w*(P[:,a]*((a==b)-P[:,b]))
                H[a*d:(a+1)*d,b*d:(b+1)*d]=(X*wab[:,None]).T@X
        H+=np.diag(reg)
        step=np.linalg.solve(H,G); th-=step
        if np.abs(step).max()<1e-10: break
    return th
def predict(th,Z):
    n=len(Z); X=np.hstack([np.ones((n,1)),Z]); d=X.shape[1]
    S=np.stack([X@th[:d], X@th[d:], np.zeros(n)],1); S-=S.max(1,keepdims=True); P=np.exp(S); return P/P.sum(1,keepdims=True)
def train_predict(Xtr,ytr,Xte,l2=0.0003):
    mu=Xtr.mean(0); sd=Xtr.std(0); sd[sd<1e-9]=1e-9
    th=fit_mlogit((Xtr-mu)/sd,ytr,np.ones(len(ytr)),l2*len(ytr))
    return predict(th,(Xte-mu)/sd)
def season_predictions(rows, E=None, seasons=('1718','1819','1920'), leagues=('E0','D1','I1','SP1','F1')):
    """Both heads refitted before each validation season on every earlier row (extra columns E
    added to both): yields (league, season, the season's row indices, base, market, chosen)."""
    X=np.array([r['x'] for r in rows]); E=np.zeros((len(rows),0)) if E is None else E
    y=np.array([r['y'] for r in rows]); mk=np.array([r['mk'] for r in rows]); comp=np.array([r['comp'] for r in rows])
    k=np.array([r['k'] for r in rows])
    base_cols=[i for i in range(12) if i not in (8,9)]
    Xb=np.hstack([X[:,base_cols],E]); Xm=np.hstack([X,E])
    for L in leagues:
        for s in seasons:
            a,b=season_bounds(L,s)
            start=datetime.combine(a,datetime.min.time()); end=datetime.combine(b,datetime.max.time())
            tr=k<start; te=np.where((comp==L)&(k>=start)&(k<=end))[0]
            Pb=train_predict(Xb[tr],y[tr],Xb[te])
            Pm=train_predict(Xm[tr&mk],y[tr&mk],Xm[te])
            yield L,s,te,Pb,Pm,np.where(mk[te][:,None],Pm,Pb)
def evaluate(rows, feats):
    """feats(rows)->matrix of extra columns (n x m) aligned to rows: RPS per match, per (league, season)."""
    y=np.array([r['y'] for r in rows])
    return {(L,s):rps(P,y[te]) for L,s,te,_,_,P in season_predictions(rows, feats(rows) if feats else None)}
def summary(out,label):
    allv=np.concatenate(list(out.values())); no=np.concatenate([v for (L,s),v in out.items() if L!='E0'])
    e0=np.concatenate([v for (L,s),v in out.items() if L=='E0'])
    print(f'{label:40s} pooled {allv.mean():.5f} ({len(allv)})  w/o E0 {no.mean():.5f}  E0 {e0.mean():.5f}', flush=True)
    return allv

from collections import defaultdict
LEAGUES=('E0','D1','I1','SP1','F1')
SEASONS=['1213','1314','1415','1516','1617','1718','1819','1920','2021','2122','2223','2324']
def all_csv():
    out=[]
    for L in LEAGUES:
        for s in SEASONS:
            p=f'{ROOT}/{L}/{L}_{s}.csv'
            if not os.path.exists(p): continue
            for r in season_matches(L,s):
                r['_d']=parse_date(r['Date']); r['_L']=L; out.append(r)
    out.sort(key=lambda r:r['_d'])
    return out
def name_map(rows, csvrows):
    cand={}
    byday=defaultdict(set)
    for r in rows: byday[(r['comp'],r['k'].date())].add(r['home'])
    for c in csvrows:
        key=(c['_L'],c['_d'])
        if key not in byday: continue
        s=byday[key]; n=(c['_L'],c['HomeTeam'])
        cand[n]=cand[n]&s if n in cand else set(s)
    # resolve by elimination
    m={}
    changed=True
    while changed:
        changed=False
        for n,s in cand.items():
            s-= set(m.values()) - ({m[n]} if n in m else set())
            if len(s)==1 and n not in m: m[n]=next(iter(s)); changed=True
    return m
def f(c,k):
    try: return float(c[k])
    except: return float('nan')
def team_ewma(rows, csvrows, stats, half_life_matches=8.0):
    """For each row: home team's EWMA of (stat_for - stat_against) over its previous matches (any venue),
    minus the away team's. stats: list of (home_col, away_col)."""
    nm=name_map(rows,csvrows)
    a=0.5**(1/half_life_matches)
    state=defaultdict(lambda: None)  # (team) -> np.array of ewma diffs
    # events by date
    ev=defaultdict(list)
    for c in csvrows:
        h=nm.get((c['_L'],c['HomeTeam'])); aw=nm.get((c['_L'],c['AwayTeam']))
        if h is None or aw is None: continue
        v=np.array([f(c,hc)-f(c,ac) for hc,ac in stats])
        ev[c['_d']].append((h,aw,v))
    days=sorted(ev)
    out=np.zeros((len(rows),len(stats)))
    idx=sorted(range(len(rows)), key=lambda i: rows[i]['k'])
    di=0
    for i in idx:
        d=rows[i]['k'].date()
        while di<len(days) and days[di]<d:
            for h,aw,v in ev[days[di]]:
                for t,sg in ((h,1),(aw,-1)):
                    x=sg*v
                    if np.any(np.isnan(x)): continue
                    s=state[t]
                    state[t]=x.copy() if s is None else a*s+(1-a)*x
            di+=1
        sh=state[rows[i]['home']]; sa=state[rows[i]['away']]
        sh=np.zeros(len(stats)) if sh is None else sh; sa=np.zeros(len(stats)) if sa is None else sa
        out[i]=sh-sa
    return out
def league_rates(rows, csvrows, n_last=150):
    ev=defaultdict(list)
    for c in csvrows: ev[c['_L']].append((c['_d'],c['FTR']))
    out=np.zeros((len(rows),2))
    import bisect
    for L,lst in ev.items():
        lst.sort(); ds=[d for d,_ in lst]
        hw=np.cumsum([1 if r=='H' else 0 for _,r in lst]); dr=np.cumsum([1 if r=='D' else 0 for _,r in lst])
        for i,r in enumerate(rows):
            if r['comp']!=L: continue
            j=bisect.bisect_left(ds,r['k'].date())
            lo=max(0,j-n_last); n=j-lo
            if n<20: out[i]=[0.45,0.26]; continue
            out[i]=[(hw[j-1]-(hw[lo-1] if lo>0 else 0))/n, (dr[j-1]-(dr[lo-1] if lo>0 else 0))/n]
    return out

def stakes(rows, csvrows, top=4, rel=3, mode='diff'):
    nm=name_map(rows,csvrows)
    # group csv by (L, season file) -> we don't have season id in csv rows; derive: season = date with break >40 days
    byL=defaultdict(list)
    for c in csvrows: byL[c['_L']].append(c)
    feat={}  # (L,date,home) -> (sh, sa)
    for L,lst in byL.items():
        lst.sort(key=lambda c:c['_d'])
        seasons=[]; cur=[]
        for c in lst:
            if cur and (c['_d']-cur[-1]['_d']).days>45: seasons.append(cur); cur=[]
            cur.append(c)
        seasons.append(cur)
        for S in seasons:
            teams=sorted({c['HomeTeam'] for c in S}|{c['AwayTeam'] for c in S}); n=len(teams)
            total=2*(n-1)
            pts=defaultdict(int); pl=defaultdict(int)
            days=sorted({c['_d'] for c in S}); bydate=defaultdict(list)
            for c in S: bydate[c['_d']].append(c)
            for d in days:
                # features from table before d
                tab=sorted(teams, key=lambda t:-pts[t])
                P=[pts[t] for t in tab]; R={t: total-pl[t] for t in teams}
                def st(t):
                    p=pts[t]; r=R[t]
                    if r>=total: return 1.0
                    p_top=P[top-1]; 
                    alive_top = p+3*r >= p_top and not (p - max(pts[u]+3*R[u] for u in tab[top:] if u!=t) > 0 if len(tab)>top else False)
                    # relegation: first relegated position team
                    ir=n-rel; zone=tab[ir:]; 
                    maxzone=max((pts[u]+3*R[u] for u in zone if u!=t), default=-1)
                    alive_bot = maxzone >= p
                    return 1.0 if (alive_top or alive_bot) else 0.0
                for c in bydate[d]:
                    feat[(L,d,c['HomeTeam'])]=(st(c['HomeTeam']),st(c['AwayTeam']), min(R[c['HomeTeam']],R[c['AwayTeam']])/total)
                for c in bydate[d]:
                    h,a=c['HomeTeam'],c['AwayTeam']; pl[h]+=1; pl[a]+=1
                    if c['FTR']=='H': pts[h]+=3
                    elif c['FTR']=='A': pts[a]+=3
                    elif c['FTR']=='D': pts[h]+=1; pts[a]+=1
    inv={v:k for k,v in nm.items()}
    out=np.zeros((len(rows),3))
    miss=0
    for i,r in enumerate(rows):
        key=inv.get(r['home']); 
        v=feat.get((r['comp'],r['k'].date(),key[1])) if key else None
        if v is None: miss+=1; continue
        sh,sa,rem=v
        out[i]=[sh-sa, sh+sa-2, rem]
    print('stakes missing',miss,file=sys.stderr)
    return out


def gap_by_month(rows, seasons=('1718', '1819', '1920')):
    """Where the model loses to the opening odds (normalised): mean RPS difference per month."""
    gaps = defaultdict(list)
    # A team without a match in its competition in the market model's 400-day window: a promoted
    # team before its first odds there (the fifth pass sent these to the base head).
    last_seen, new_team = {}, np.zeros(len(rows), bool)
    for i, r in enumerate(rows):
        for t in (r['home'], r['away']):
            seen = last_seen.get((r['comp'], t))
            new_team[i] |= seen is None or (r['k'] - seen).days > 400
        for t in (r['home'], r['away']):
            last_seen.setdefault((r['comp'], t), r['k'])
            if r['k'].date() > last_seen[(r['comp'], t)].date():
                last_seen[(r['comp'], t)] = r['k']
    promoted = {'base': [], 'market': []}
    y = np.array([r['y'] for r in rows])
    for L, s, te, Pb, Pm, P in season_predictions(rows, seasons=seasons):
        for j, i in enumerate(te):
            o = rows[i].get('op')
            if not o:
                continue
            q = np.array([1 / o['home'], 1 / o['draw'], 1 / o['away']]); q /= q.sum()
            gap = lambda p: rps(p[None, :], y[i:i + 1])[0] - rps(q[None, :], y[i:i + 1])[0]
            gaps[(s, rows[i]['k'].month)].append(gap(P[j]))
            if new_team[i]:
                promoted['base'].append(gap(Pb[j]))
                promoted['market'].append(gap(Pm[j]))
    print(f"a promoted team before its first odds ({len(promoted['base'])} matches), model minus opening odds per match:"
          f" base head {np.mean(promoted['base']):+.4f}, market head {np.mean(promoted['market']):+.4f}")
    print('model minus opening odds, mean RPS per match, by month (matches):')
    for s in seasons:
        print('  ' + s + ' ' + ' '.join(f'{m}:{np.mean(gaps[(s, m)]):+.4f}({len(gaps[(s, m)])})'
                                        for m in (8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7) if gaps[(s, m)]))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = load_rows(sys.argv[1])
    C = all_csv()
    X = np.array([r['x'] for r in rows])
    summary(evaluate(rows, None), 'heads as the rows choose them')
    for r in rows:
        r['mk'] = True
    base = summary(evaluate(rows, None), 'market head for promoted teams (mlogit-3)')
    gap_by_month(rows)
    S4, S6 = stakes(rows, C), stakes(rows, C, top=6)
    rem = S4[:, [2]]
    comp = np.array([r['comp'] for r in rows])
    OH = np.stack([(comp == L).astype(float) for L in LEAGUES[1:]], 1)
    probes = {
        'squared market supremacy': lambda: X[:, [8]] ** 2,
        'squared DC supremacy': lambda: X[:, [0]] ** 2,
        'absolute market supremacy': lambda: np.abs(X[:, [8]]),
        'league home/draw rates, last 150': lambda: league_rates(rows, C, 150),
        'league home/draw rates, last 300': lambda: league_rates(rows, C, 300),
        'shots per team (EWMA 8 matches)': lambda: team_ewma(rows, C, [('HS', 'AS')], 8),
        'corners per team': lambda: team_ewma(rows, C, [('HC', 'AC')], 8),
        'shots on target per team': lambda: team_ewma(rows, C, [('HST', 'AST')], 8),
        'shots, on target, corners': lambda: team_ewma(rows, C, [('HS', 'AS'), ('HST', 'AST'), ('HC', 'AC')], 8),
        'red cards in the last match': lambda: team_ewma(rows, C, [('HR', 'AR')], 1),
        'fouls and yellow cards': lambda: team_ewma(rows, C, [('HF', 'AF'), ('HY', 'AY')], 8),
        'league intercepts': lambda: OH,
        'stakes (top 4 / relegation), difference': lambda: S4[:, [0]],
        'stakes, difference and sum': lambda: S4[:, :2],
        'stakes (top 6), difference': lambda: S6[:, [0]],
        'season left': lambda: rem,
        'season left x market supremacy': lambda: rem * X[:, [8]],
        'season left x every supremacy': lambda: rem * X[:, [0, 3, 4, 8, 10, 11]],
    }
    for name, f in probes.items():
        v = summary(evaluate(rows, lambda _rows, f=f: f()), name)
        d = v - base
        print(f'    difference {d.mean():+.5f} (standard error {d.std() / np.sqrt(len(d)):.5f})', flush=True)


main()
