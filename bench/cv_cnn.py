"""Grouped CV of a small one-hot CNN for the bundled circRNA model (research helper; not shipped).

Same folds as bench/cv_select.py (StratifiedGroupKFold(5, shuffle, seed 0) over train.tsv rows
grouped by cd-hit-est 80% clusters; extra rows join a training fold only outside its validation
clusters; scored on train.tsv rows). CNN: one Conv1d over one-hot (--filters x --width), ReLU,
masked global max + mean pooling, dropout, linear; AdamW, sequences over --crop nt cropped to a
random window per epoch, early stopping (patience 5) on the loss of an inner validation set
(train.tsv rows of 10% of the training clusters); evaluation on the first 8,000 nt.
Writes the out-of-fold P(second class) to /tmp/cnn/oof_TAG.npy, so that ensembles with
cv_select.py's out-of-fold probabilities can be scored on the same folds.

    OMP_NUM_THREADS=1 python bench/cv_cnn.py --tag cnn128 --filters 128 --width 12 --drop 0.5 \
        --lr 1e-3 --wd 1e-2 --epochs 30          # needs /tmp/kmer (see cv_select.py)
"""
import argparse, os, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
from cv_select import load, metrics  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold
from rnaloc_tools.encoders.onehot import one_hot
ap = argparse.ArgumentParser()
ap.add_argument('--rna', default='circRNA'); ap.add_argument('--filters', type=int, default=64)
ap.add_argument('--width', type=int, default=9); ap.add_argument('--crop', type=int, default=1500)
ap.add_argument('--epochs', type=int, default=25); ap.add_argument('--lr', type=float, default=2e-3)
ap.add_argument('--wd', type=float, default=1e-3); ap.add_argument('--drop', type=float, default=0.3)
ap.add_argument('--extra', type=int, default=1); ap.add_argument('--tag', default='cnn')
ap.add_argument('--threads', type=int, default=1); ap.add_argument('--seeds', type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
df = load('/tmp/kmer', str(Path(__file__).resolve().parents[1] / 'datasets'), a.rna, 6, train_only=not a.extra)
X = [torch.from_numpy(one_hot(s.upper().replace('T','U'))) for s in df.sequence]
y = df.y.values

class CNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv1d(4, a.filters, a.width, padding=a.width//2)
        s.drop = nn.Dropout(a.drop); s.fc = nn.Linear(2*a.filters, 2)
    def forward(s, x, lengths):
        h = F.relu(s.conv(x.transpose(1,2)))[:, :, :x.shape[1]]
        m = (torch.arange(x.shape[1])[None] < lengths[:,None]).float()[:,None]
        h = h*m
        mx = (h - (1-m)*1e4).amax(2); mean = h.sum(2)/lengths[:,None].float()
        return s.fc(s.drop(torch.cat([mx, mean],1)))

def batches(idx, rng, train):
    idx = np.array(idx)
    if train: idx = rng.permutation(idx)
    for i in range(0, len(idx), 32):
        b = idx[i:i+32]; seqs=[]
        for j in b:
            t = X[j]
            if train and len(t) > a.crop:
                st = rng.integers(0, len(t)-a.crop+1); t = t[st:st+a.crop]
            elif not train and len(t) > 8000: t = t[:8000]
            seqs.append(t)
        L = max(len(t) for t in seqs)
        xb = torch.zeros(len(b), L, 4)
        for k,t in enumerate(seqs): xb[k,:len(t)] = t
        yield b, xb, torch.tensor([len(t) for t in seqs])

def predict(model, idx):
    model.eval(); out = np.zeros(len(idx)); order = np.argsort([len(X[j]) for j in idx])
    pos = {j:k for k,j in enumerate(idx)}
    with torch.no_grad():
        for b, xb, ln in batches(np.array(idx)[order], None, False):
            p = torch.softmax(model(xb, ln),1)[:,1].numpy()
            for j,pp in zip(b,p): out[pos[j]] = pp
    return out

def fit(tr_idx, seed):
    torch.manual_seed(seed); rng = np.random.default_rng(seed)
    # inner validation: 10% of train-table rows by cluster
    tr_idx = np.array(tr_idx)
    cl = df.cluster.values[tr_idx]; ucl = np.unique(cl); rng.shuffle(ucl)
    inner_val_cl = set(ucl[:len(ucl)//10])
    isval = np.array([c in inner_val_cl for c in cl]) & (df.table.values[tr_idx]=='train')
    fit_idx, val_idx = tr_idx[~isval], tr_idx[isval]
    model = CNN(); opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    best, best_state, bad = 1e9, None, 0
    for ep in range(a.epochs):
        model.train()
        for b, xb, ln in batches(fit_idx, rng, True):
            loss = F.cross_entropy(model(xb, ln), torch.from_numpy(y[b]))
            opt.zero_grad(); loss.backward(); opt.step()
        p = predict(model, val_idx)
        vl = -np.mean(y[val_idx]*np.log(p+1e-7)+(1-y[val_idx])*np.log(1-p+1e-7))
        if vl < best: best, best_state, bad, bep = vl, {k:v.clone() for k,v in model.state_dict().items()}, 0, ep
        else:
            bad += 1
            if bad >= 5: break
    model.load_state_dict(best_state)
    return model, bep

train = df[df.table=='train']
folds = StratifiedGroupKFold(5, shuffle=True, random_state=0)
oof = np.zeros(len(train)); t0=time.time()
for fold,(tr,va) in enumerate(folds.split(train, train.y, train.cluster)):
    tr_idx, va_idx = train.index[tr], train.index[va]
    if a.extra:
        ex = df.index[(df.table!='train') & ~df.cluster.isin(set(df.cluster[va_idx]))]
        tr_idx = np.concatenate([tr_idx, ex])
    ps = []
    for s in range(a.seeds):
        model, bep = fit(tr_idx, s); ps.append(predict(model, list(va_idx)))
    oof[va] = np.mean(ps,0)
    print(fold, bep, metrics(y[va_idx], oof[va]), round(time.time()-t0), flush=True)
os.makedirs('/tmp/cnn', exist_ok=True)
np.save(f'/tmp/cnn/oof_{a.tag}.npy', oof)
