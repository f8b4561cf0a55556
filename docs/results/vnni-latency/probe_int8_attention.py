# Probe, not part of the toolkit (needs python3-onnx and numpy): rewrites the float attention of a QDQ export of the
# kept teacher (ffc export MODEL --precision int8) so that its two MatMuls and its Softmax sit between Q/DQ pairs, to
# see what ONNX Runtime fuses them into and how fast that runs. The energy scale (a Mul) is dropped: latency only.
# usage: python3 probe_int8_attention.py IN.onnx OUT.onnx
import sys, onnx
from onnx import helper, TensorProto, numpy_helper
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src); g = m.graph
nodes = list(g.node)
byname = {n.name: n for n in nodes}
inits = []
def const(name, val, dt):
    arr = np.array(val, dtype=dt)
    inits.append(numpy_helper.from_array(arr, name)); return name
def qdq(x, tag, scale, zp, dt):
    s = const(f'{tag}_s', scale, np.float32); z = const(f'{tag}_z', zp, dt)
    q = helper.make_node('QuantizeLinear', [x, s, z], [f'{tag}_q'], name=f'{tag}_Q')
    d = helper.make_node('DequantizeLinear', [f'{tag}_q', s, z], [f'{tag}_dq'], name=f'{tag}_DQ')
    return [q, d], f'{tag}_dq'
new = []
skip = set()
for n in nodes:
    if n.op_type == 'MatMul' and n.name.endswith(tuple(str(i) for i in range(10))) and '_energy_' in n.name:
        pre = n.name.split('_energy_')[0]
        qt, k = n.input
        a, qtd = qdq(qt, pre+'_qt', 0.05, 128, np.uint8)
        b, kd = qdq(k, pre+'_k', 0.05, 0, np.int8)
        new += a + b
        e = helper.make_node('MatMul', [qtd, kd], [pre+'_e'], name=pre+'_energyq')
        c, ed = qdq(pre+'_e', pre+'_eq', 0.1, 128, np.uint8)
        new += [e] + c
        sm = byname[[x.name for x in nodes if x.op_type=='Softmax' and x.name.startswith(pre)][0]]
        smn = helper.make_node('Softmax', [ed], [pre+'_p'], name=pre+'_softmaxq', axis=-1)
        p, pd = qdq(pre+'_p', pre+'_pq', 1/256, 0, np.uint8)
        new += [smn] + p
        att = [x for x in nodes if x.op_type=='MatMul' and x.name.startswith(pre+'_attended')][0]
        v = att.input[0]
        vt = helper.make_node('Transpose', [v], [pre+'_vt'], name=pre+'_vtq', perm=[0,2,1])
        vq, vtd = qdq(pre+'_vt', pre+'_vtq', 0.05, 0, np.int8)
        mm = helper.make_node('MatMul', [pd, vtd], [pre+'_attT'], name=pre+'_attendedq')
        oq, od = qdq(pre+'_attT', pre+'_aq', 0.05, 128, np.uint8)
        back = helper.make_node('Transpose', [od], [att.output[0]], name=pre+'_attback', perm=[0,2,1])
        new += [vt] + vq + [mm] + oq + [back]
        for x in nodes:
            if x.name.startswith(pre) and x.op_type in ('Mul','Softmax','Transpose','MatMul') and ('_scaled_' in x.name or '_softmax_' in x.name or '_at_' in x.name or '_attended_' in x.name):
                skip.add(x.name)
        skip.add(n.name)
out = []
for n in nodes:
    if n.name in skip:
        if '_energy_' in n.name:
            pre = n.name.split('_energy_')[0]
            out += [x for x in new if x.name.startswith(pre)]
        continue
    out.append(n)
del g.node[:]; g.node.extend(out); g.initializer.extend(inits)
onnx.checker.check_model(m)
onnx.save(m, dst)
print('rewrote', len(skip), 'nodes')
