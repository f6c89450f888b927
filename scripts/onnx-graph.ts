/**
 * A small ONNX graph builder on top of onnx-proto (a devDependency: only scripts and tests import
 * this file; the runtime in src/ never does). Output is deterministic: the same calls give the same
 * bytes, since nothing here reads the clock, the environment or a random source.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

export type Dim = number | string;

/** ONNX element types used here (TensorProto.DataType). */
export const FLOAT = 1;
export const INT64 = 7;

/** Typed node attributes: the attribute type cannot be inferred from a JS number. */
export type Attr =
  | { float: number }
  | { int: number }
  | { ints: number[] }
  | { floats: number[] }
  | { string: string };

const AttributeType = onnx.AttributeProto.AttributeType;

function attribute(name: string, value: Attr): OnnxTypes.IAttributeProto {
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  if ('ints' in value) return { name, type: AttributeType.INTS, ints: value.ints };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value.string) };
}

function valueInfo(name: string, dims: Dim[] | undefined, elemType: number): OnnxTypes.IValueInfoProto {
  const shape = dims === undefined ? undefined : { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType: { elemType, shape } } };
}

export class GraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly counters = new Map<string, number>();

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  private fresh(prefix: string): string {
    const n = this.counters.get(prefix) ?? 0;
    this.counters.set(prefix, n + 1);
    return `${prefix}_${n}`;
  }

  input(name: string, dims: Dim[], elemType = FLOAT): string {
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Declares `value` a graph output; `dims` undefined leaves the shape to inference. */
  output(value: string, dims?: Dim[], elemType = FLOAT): string {
    this.outputs.push(valueInfo(value, dims, elemType));
    return value;
  }

  /** A float32 initializer (stored little-endian in raw_data). */
  floats(dims: number[], values: ArrayLike<number>, name = this.fresh('const')): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) throw new Error(`initializer ${name}: ${values.length} values for dims [${dims.join(',')}]`);
    const data = Float32Array.from(values);
    const raw = new Uint8Array(data.byteLength);
    const view = new DataView(raw.buffer);
    data.forEach((v, i) => view.setFloat32(i * 4, v, true));
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: raw });
    return name;
  }

  /** A scalar float32 initializer (rank 0). */
  scalar(value: number, name = this.fresh('scalar')): string {
    return this.floats([], [value], name);
  }

  /** An int64 initializer (for axes, pads, shapes, indices). */
  int64s(dims: number[], values: number[], name = this.fresh('ints')): string {
    this.initializers.push({ name, dims, dataType: INT64, int64Data: values });
    return name;
  }

  /** Adds one node; returns its first output (or `outputs` outputs via `nodeN`). */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    return this.nodeN(op, inputs, 1, attrs, output === undefined ? undefined : [output])[0]!;
  }

  nodeN(op: string, inputs: string[], count: number, attrs: Record<string, Attr> = {}, outputs?: string[]): string[] {
    const name = this.fresh(op);
    const outs = outputs ?? Array.from({ length: count }, (_, i) => (count === 1 ? name : `${name}_out${i}`));
    this.nodes.push({
      name,
      opType: op,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Serialises the model: `opset` of the default domain, IR version 8 (onnx 1.10). */
  encode(options: { opset: number; docString?: string; producer?: string; metadata?: Record<string, string> }): Uint8Array {
    const model: OnnxTypes.IModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: options.opset }],
      producerName: options.producer ?? 'roi-encoder',
      producerVersion: '1',
      modelVersion: 1,
      docString: options.docString ?? '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
