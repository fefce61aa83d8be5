//! Where a response holds data served from stale copies (an entity whose
//! service failed, served from the cache past its TTL): named by response
//! path in `extensions.stale`, e.g. `[["product", "relatedProducts", 2]]`,
//! so an app can mark exactly what it shows as possibly out of date.
//!
//! The caches record which entities they served stale
//! ([`downstream::StaleMarks`], `kind:id`); the GraphQL objects made from
//! entities are [`Tracked`], and note their own path when theirs is one of
//! them. A mark no object noted (an entity used only to compute something
//! else) is reported as the path `[]`: something in this response.

use std::borrow::Cow;
use std::sync::Mutex;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, OutputType, PathSegment, Positioned, QueryPathNode, QueryPathSegment,
    ServerResult, Value,
};

use super::RequestScope;

/// An entity type of a schema: a GraphQL object made from one cached
/// entity.
pub trait Entity: OutputType {
    /// The entity cache's name for it (`product`, `user`): the `kind` of
    /// its stale marks.
    const KIND: &'static str;

    fn entity_id(&self) -> &str;
}

/// `T` as the schema shows it (same type, same fields), noting its
/// response path when it was served from a stale copy. Resolvers return
/// `Tracked<Product>` wherever they return a product.
pub struct Tracked<T>(pub T);

impl<T: Entity> OutputType for Tracked<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if let Some(scope) = ctx.data_opt::<RequestScope>() {
            scope.note_if_stale(T::KIND, self.0.entity_id(), ctx.path_node.as_ref());
        }
        self.0.resolve(ctx, field).await
    }
}

/// The marks and noted paths of one request, kept past its execution.
pub(crate) struct StaleReport {
    pub(crate) marks: downstream::StaleMarks,
    pub(crate) paths: std::sync::Arc<StalePaths>,
}

impl StaleReport {
    /// `extensions.stale`, if anything was served stale.
    pub(crate) fn extension(&self) -> Option<Value> {
        if self.marks.is_empty() {
            return None;
        }
        self.paths.extension(&self.marks.list())
    }
}

/// The stale paths one request noted, and which marks they were for.
#[derive(Debug, Default)]
pub(crate) struct StalePaths(Mutex<Noted>);

#[derive(Debug, Default)]
struct Noted {
    paths: Vec<Vec<PathSegment>>,
    marks: Vec<String>,
}

impl StalePaths {
    pub(crate) fn note(&self, mark: String, path: Option<&QueryPathNode<'_>>) {
        let path = path.map(response_path).unwrap_or_default();
        let mut noted = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !noted.paths.contains(&path) {
            noted.paths.push(path);
        }
        if !noted.marks.contains(&mark) {
            noted.marks.push(mark);
        }
    }

    /// `extensions.stale`: every noted path, sorted, and `[]` when a mark
    /// in `marks` got no path; `None` when nothing was stale.
    pub(crate) fn extension(&self, marks: &[String]) -> Option<Value> {
        if marks.is_empty() {
            return None;
        }
        let noted = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut paths = noted.paths.clone();
        if marks.iter().any(|mark| !noted.marks.contains(mark)) && !paths.contains(&Vec::new()) {
            paths.push(Vec::new());
        }
        paths.sort_by_key(|path| path.iter().map(segment_key).collect::<Vec<_>>());
        Some(Value::List(
            paths
                .into_iter()
                .map(|path| Value::List(path.into_iter().map(segment_value).collect()))
                .collect(),
        ))
    }
}

fn response_path(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        })
        .collect();
    // Walked from the leaf up.
    path.reverse();
    path
}

/// Sorts fields by name and list items by index, fields first.
fn segment_key(segment: &PathSegment) -> (u8, String, usize) {
    match segment {
        PathSegment::Field(name) => (0, name.clone(), 0),
        PathSegment::Index(index) => (1, String::new(), *index),
    }
}

fn segment_value(segment: PathSegment) -> Value {
    match segment {
        PathSegment::Field(name) => Value::String(name),
        PathSegment::Index(index) => Value::from(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(value: Option<Value>) -> serde_json::Value {
        serde_json::to_value(value.unwrap_or(Value::Null)).unwrap_or_default()
    }

    #[test]
    fn marks_without_a_noted_path_are_reported_as_the_whole_response() {
        let noted = StalePaths::default();
        assert_eq!(noted.extension(&[]), None);
        noted.note("product:p1".into(), None);
        // Noted with no path, and a mark never noted: one `[]`, once.
        let marks = ["product:p1".to_owned(), "user:u1".to_owned()];
        assert_eq!(paths(noted.extension(&marks)), serde_json::json!([[]]));
    }
}
