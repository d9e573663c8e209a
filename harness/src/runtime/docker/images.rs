//! Which image a service runs, and whether the engine has it.
//!
//! The defaults are the official images' names, so a machine with a registry pulls them as
//! usual, and `scripts/build-images.sh` (`just images`) builds images under the same names from
//! Debian's packages for machines without one.

use testcontainers::bollard::Docker;

use crate::scenario::{ServiceKind, ServiceSpec};

/// Default image of a Redis service (Debian bookworm ships 7.0).
pub const DEFAULT_REDIS_IMAGE: &str = "redis:7";
/// Default image of a RabbitMQ service (Debian bookworm ships 3.10).
pub const DEFAULT_RABBITMQ_IMAGE: &str = "rabbitmq:3";

/// How to get the default images onto an engine, for error messages.
pub const BUILD_HINT: &str =
    "build them from Debian packages with `just images` (scripts/build-images.sh), or `docker pull` them where a registry is reachable";

/// An image reference split the way testcontainers wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
}

impl ImageRef {
    /// `name[:tag]`; the tag defaults to `latest`. A `:` before the last `/` belongs to a
    /// registry's port (`localhost:5000/redis`), not to the tag.
    pub fn parse(image: &str) -> Self {
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        match image[slash..].rfind(':') {
            Some(i) => Self {
                name: image[..slash + i].to_owned(),
                tag: image[slash + i + 1..].to_owned(),
            },
            None => Self {
                name: image.to_owned(),
                tag: "latest".to_owned(),
            },
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The image a service runs on the docker runtime: the scenario's, or the kind's default.
pub fn image_of(spec: &ServiceSpec) -> ImageRef {
    ImageRef::parse(spec.image.as_deref().unwrap_or(match spec.kind {
        ServiceKind::Redis => DEFAULT_REDIS_IMAGE,
        ServiceKind::Rabbitmq => DEFAULT_RABBITMQ_IMAGE,
    }))
}

/// The images of `images` the engine does not have (it may still pull them, but a run should
/// not hang on a registry that is not there).
pub async fn missing(docker: &Docker, images: &[ImageRef]) -> Vec<ImageRef> {
    let mut out = Vec::new();
    for image in images {
        if docker.inspect_image(&image.to_string()).await.is_err() && !out.contains(image) {
            out.push(image.clone());
        }
    }
    out
}

/// The value the image gives the environment variable `key`, if it gives one.
pub(crate) async fn env_var(
    docker: &Docker,
    image: &ImageRef,
    key: &str,
) -> Result<Option<String>, testcontainers::bollard::errors::Error> {
    let env = docker
        .inspect_image(&image.to_string())
        .await?
        .config
        .and_then(|c| c.env)
        .unwrap_or_default();
    Ok(env.into_iter().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    }))
}

#[cfg(test)]
mod tests {
    use super::ImageRef;

    #[test]
    fn parses_names_tags_and_registry_ports() {
        let r = |s: &str| ImageRef::parse(s).to_string();
        assert_eq!(r("redis:7"), "redis:7");
        assert_eq!(r("redis"), "redis:latest");
        assert_eq!(r("localhost:5000/redis"), "localhost:5000/redis:latest");
        assert_eq!(
            r("localhost:5000/lib/redis:7.2"),
            "localhost:5000/lib/redis:7.2"
        );
        assert_eq!(ImageRef::parse("rabbitmq:3").name, "rabbitmq");
    }
}
