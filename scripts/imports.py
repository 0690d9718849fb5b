#!/usr/bin/env python3
# The core's module imports and their cycles, at a git revision:
#   python3 scripts/imports.py REV [ROOT]   (ROOT: src/stevedore, or src/ffi)
# Prints `module -> modules it imports` (super::/crate::stevedore:: paths
# outside test modules and comments), then the two-way imports and the
# strongly connected groups (import cycles) among them.
import os, subprocess, re, sys
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rev = sys.argv[1]
root = sys.argv[2] if len(sys.argv) > 2 else 'src/stevedore'
files = subprocess.run(['git','ls-tree','-r','--name-only',rev,root],capture_output=True,text=True,cwd=REPO).stdout.split()
mods = {}
for f in files:
    if not f.endswith('.rs'): continue
    rel = f[len(root)+1:-3]
    if rel.startswith('unpack/'):
        name = 'unpack::' + rel.split('/',1)[1]
        if name == 'unpack::mod': name = 'unpack'
    else:
        name = rel.replace('/mod','').replace('/','::')
    src = subprocess.run(['git','show',f'{rev}:{f}'],capture_output=True,text=True,cwd=REPO).stdout
    i = src.find('#[cfg(test)]\nmod tests')
    if i >= 0: src = src[:i]
    src = re.sub(r'//[^\n]*', '', src)
    deps = set()
    for m in re.finditer(r'(?:super::super|super|crate::stevedore)::([a-z_]+)(?:::([a-z_]+))?', src):
        a, b = m.group(1), m.group(2)
        if name.startswith('unpack::') and m.group(0).startswith('super::') and not m.group(0).startswith('super::super'):
            d = 'unpack::' + a if a not in ('super',) else None
        elif a == 'unpack' and b:
            d = 'unpack::' + b
        else:
            d = a
        if d and d != name and d != 'mod': deps.add(d)
    mods[name] = sorted(deps)
# cycles
def cycles():
    out=set()
    for a in mods:
        for b in mods[a]:
            if b in mods and a in mods[b]: out.add(tuple(sorted((a,b))))
    return out
for k in sorted(mods):
    print(f"{k} -> {' '.join(mods[k]) or '(none)'}")
print('two-way imports:', sorted(cycles()) or 'none')
# strongly connected components of more than one module
index={}; low={}; stack=[]; on=set(); sccs=[]; c=[0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v]=low[v]=c[0]; c[0]+=1; stack.append(v); on.add(v)
    for w in mods.get(v,[]):
        if w not in mods: continue
        if w not in index:
            strong(w); low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],index[w])
    if low[v]==index[v]:
        comp=[]
        while True:
            w=stack.pop(); on.discard(w); comp.append(w)
            if w==v: break
        if len(comp)>1: sccs.append(sorted(comp))
for v in mods:
    if v not in index: strong(v)
print('cycles (strongly connected groups):', sccs or 'none')
