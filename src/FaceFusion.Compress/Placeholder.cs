namespace FaceFusion.Compress; public static class Placeholder {}
