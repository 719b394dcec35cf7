// The package's Node entry is CommonJS under "type": "module", so the ES build is imported by path.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
