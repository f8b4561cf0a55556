namespace FaceFusion.Compress.Reporting;

/// <summary>
/// An <see cref="IProgress{T}"/> that runs its callback on the reporting thread, in order. Use it instead of
/// <see cref="Progress{T}"/> around TorchSharp work: <see cref="Progress{T}"/> posts callbacks to the thread pool in a
/// console process, and their allocations (strings, console rendering) start garbage collections while the main thread
/// is inside a LibTorch call. TorchSharp's implicitly converted scalars (<c>x.mul(10)</c>) are finalizable objects
/// whose raw handle is passed to native code without being kept alive, so such a collection can free a scalar that
/// LibTorch is still reading — seen here as ATen's "Expected false to be true" from a scalar conversion, only when a
/// progress line was printed while a training step started.
/// </summary>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
